"""What agents and the market score along paths (model.md sections 1 and 5): utilities, clearing and the
terminal condition. Shared by the solvers' losses, the metrics, the best responses and the RL agents.

Shapes: B paths, K steps, N agents; time-indexed tensors carry K+1 points and Euler sums use the first K.
"""

from __future__ import annotations

from torch import Tensor

from marketeq.model.market import MarketModel


def agent_utilities(model: MarketModel, mu: Tensor, sigma: Tensor, phi: Tensor, phidot: Tensor,
                    W: Tensor) -> Tensor:
    """(B, N) Euler sums J^n = sum_{k<K} utility flow * dt, per path."""
    flow = model.utility_flow(mu[:, :-1], sigma[:, :-1], phi[:, :-1], phidot[:, :-1], W[:, :-1])
    return flow.sum(1) * model.dt


def clearing_residual(phidot: Tensor) -> Tensor:
    """(...) |(1/N) sum_n phidot^n|^2 of rates (..., N) at each point."""
    return phidot.mean(-1).pow(2)


def clearing_error(phidot: Tensor) -> Tensor:
    """(B,) per-path mean over steps k < K of |(1/N) sum_n phidot^n_k|^2."""
    return clearing_residual(phidot[:, :-1]).mean(1)


def terminal_error(model: MarketModel, S: Tensor, W: Tensor) -> Tensor:
    """(B,) |S_K - beta*T - alpha*W_K|^2 per path."""
    return (S[:, -1] - model.terminal_price(W[:, -1])).pow(2)
