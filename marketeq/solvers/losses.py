"""Loss terms of the reinforcement-link solver (model.md section 4): pure functions of tensors.

Shapes: B paths, K steps, N agents; time-indexed tensors carry K+1 points and Euler sums use the first K.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from marketeq.model.economics import agent_utilities, clearing_error, clearing_residual, terminal_error
from marketeq.model.market import MarketModel

__all__ = ["StateProjection", "agent_utilities", "agents_loss", "agents_step_reward", "clearing_error",
           "clearing_residual", "implied_clearing", "implied_rates", "link_loss", "terminal_error"]


def agents_loss(model: MarketModel, utilities: Tensor, phidot: Tensor, weights: Tensor,
                clearing_weight: float) -> tuple[Tensor, dict[str, Tensor]]:
    """Minus the weighted utilities per agent and unit of time, plus the clearing penalty.

    The market inside ``utilities`` must be detached: agents are price takers.
    """
    utility = (utilities.mean(0) * weights).sum() / (model.n_agents * model.horizon)
    clearing = clearing_error(phidot).mean()
    loss = -utility + clearing_weight * clearing
    logs = {"agents/loss": loss, "agents/utility": utilities.sum(-1).mean(), "agents/clearing": clearing}
    return loss, logs


def agents_step_reward(model: MarketModel, flow: Tensor, phidot: Tensor, weights: Tensor,
                       clearing_weight: float) -> Tensor:
    """(B,) one Euler step's share of minus :func:`agents_loss`, per path: summed over the K steps and
    averaged over paths it is minus the loss. ``flow`` (B, N) utility flow, ``phidot`` (B, N) rates at t_k."""
    utility = (flow * weights).sum(-1) * model.dt / (model.n_agents * model.horizon)
    return utility - clearing_weight * clearing_residual(phidot) / model.n_steps


class StateProjection:
    """Least-squares conditional expectation given the state, step by step: ``E[y_k | x_k]`` projected onto
    polynomial features of ``x_k = (D_k, W_k)`` (constant, x, x^2, x^3 per coordinate), fitted across paths.

    Built once per frozen roll-out (the features do not depend on the market), applied to tensors that do: the
    projection is linear, so gradients flow through it.
    """

    def __init__(self, state: Tensor, ridge: float = 1e-7, w_variance: float | None = None) -> None:
        """``state`` (B, K+1, S) in natural units, W last; ``w_variance``: the variance of one step of W in
        those units, for :meth:`later` (its expectations of the next step's features)."""
        x = state[:, :-1].transpose(0, 1).double()  # (K, B, S); float64: the deviations nearly sum to 0
        features = _features(x)  # (K, B, P)
        gram = features.transpose(1, 2) @ features / x.shape[1]
        # A ridge relative to each step's scale keeps steps with a degenerate state (t = 0) solvable.
        scale = gram.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None]
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        self.features = features.to(state.dtype)
        operator = torch.linalg.solve(gram + ridge * scale * eye, features.transpose(1, 2))
        self.operator = operator.to(state.dtype)
        self.next_features: Tensor | None = None
        if w_variance is not None:
            # E_k of the features at t_{k+1}: D_{k+1} is known at t_k (the rate is chosen then); only W moves.
            ahead = torch.cat([state[:, 1:, :-1], state[:, :-1, -1:]], dim=-1).transpose(0, 1).double()
            nxt = _features(ahead)
            w, n_coords = ahead[..., -1], ahead.shape[-1]
            nxt[..., 1 + 2 * n_coords - 1] += w_variance
            nxt[..., 1 + 3 * n_coords - 1] += 3.0 * w * w_variance
            self.next_features = nxt.to(state.dtype)

    @classmethod
    def along(cls, model: MarketModel, scales: Any, phi: Tensor, W: Tensor) -> StateProjection:
        """The projection on the state ``(D, W)`` of holdings ``phi`` (B, K+1, N) and paths ``W`` (B, K+1), in
        the units of ``scales`` (a network's :class:`~marketeq.solvers.networks.Scales`)."""
        return cls(scales.state(phi - model.phibar, W), w_variance=model.dt / scales.w**2)

    def __call__(self, y: Tensor) -> Tensor:
        """(B, K, N) -> (B, K, N): each step's values replaced by their regression on that step's state."""
        yt = y.transpose(0, 1)  # (K, B, N)
        coef = self.operator @ yt / yt.shape[1]  # (K, P, N)
        return (self.features @ coef).transpose(0, 1)

    def later(self, k: int, y_next: Tensor) -> Tensor:
        """(B, N) values at step k+1 -> their expectation given step k's state: regressed on the features at
        k+1, whose expectations are exact (no regression across the step, whose error would be O(dt))."""
        if self.next_features is None:
            raise ValueError("the projection was built without w_variance: no expectations one step ahead")
        if k + 1 >= self.operator.shape[0]:
            return torch.zeros_like(y_next)  # values at t_K: the marginal benefit there is 0 anyway
        return self.next_features[k] @ (self.operator[k + 1] @ y_next / y_next.shape[0])


def _features(x: Tensor) -> Tensor:
    """(..., S) -> (..., 1 + 3S): constant, x, x^2, x^3 per coordinate."""
    return torch.cat([torch.ones_like(x[..., :1]), x, x * x, x * x * x], dim=-1)


def implied_rates(model: MarketModel, mu: Tensor, sigma: Tensor, phi: Tensor, W: Tensor,
                  projection: StateProjection | None = None) -> Tensor:
    """(B, K+1, N) optimal rates (G')^-1(y^n_k) implied by the marginal benefit
    y^n_k = sum_{j>=k} [mu_j - gamma_n sigma_j (sigma_j phi^n_j + xi_n W_j)] dt (zero at k = K).

    Path by path (``projection`` None), or its conditional expectation given the state at t_k: the agents'
    first-order condition applies (G')^-1 to E_k[y], and for q < 2 the path-wise y, whose future noise is
    squared-and-more by (G')^-1, would bias the implied rates (for q = 2 both agree on average).
    """
    flow = model.marginal_benefit(mu[:, :-1], sigma[:, :-1], phi[:, :-1], W[:, :-1]) * model.dt
    y = flow.flip(1).cumsum(1).flip(1)
    if projection is not None:
        y = projection(y)
    y = torch.cat([y, torch.zeros_like(y[:, :1])], dim=1)
    return model.cost.inverse_marginal(y)


def implied_clearing(model: MarketModel, mu: Tensor, sigma: Tensor, phi: Tensor, W: Tensor,
                     projection: StateProjection | None = None) -> Tensor:
    """(B, K+1) mean implied optimal rate (1/N) sum_n (G')^-1(y^n_k) (see :func:`implied_rates`)."""
    return implied_rates(model, mu, sigma, phi, W, projection).mean(-1)


def link_loss(model: MarketModel, mu: Tensor, sigma: Tensor, phi: Tensor, W: Tensor, rate_scale: float,
              form: str = "increments", projection: StateProjection | None = None) -> Tensor:
    """The reinforcement link: the agents' implied optimal rates must clear at every step.

    ``levels`` penalises the implied clearing rate r_k itself. ``increments`` penalises r_k - r_{k+1}
    (scaled by K): the same zero set, since r_K = 0, but each mu_k enters its own term directly instead of
    only through the sums over later steps, which leaves early returns (mu_0) poorly determined.
    ``relative`` penalises sum_n rate^n / sum_n |rate^n|: for q < 2, (G')^-1 has zero slope at 0, so a
    penalty on the rates themselves flattens out near clearing (its gradient vanishes with the residual,
    to second order), while the ratio stays linear in the agents' disagreement wherever they trade.
    """
    if form == "relative":
        rates = implied_rates(model, mu, sigma, phi, W, projection)[:, :-1]
        scale = rates.abs().sum(-1) + 1e-3 * model.n_agents * rate_scale
        return (rates.sum(-1) / scale).pow(2).mean()
    r = implied_clearing(model, mu, sigma, phi, W, projection) / rate_scale
    if form == "levels":
        return r[:, :-1].pow(2).mean()
    if form == "increments":
        return ((r[:, :-1] - r[:, 1:]) * model.n_steps).pow(2).mean()
    raise ValueError(f"link form {form!r}: use 'increments', 'levels' or 'relative'")
