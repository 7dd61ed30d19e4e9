"""One time grid of the adaptive schedule: its model, fixed training and held-out paths, the agents' policy
and the market on the grid, the mixer and the rounds' checks."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.model.rollout import RatesFn
from marketeq.solvers.benefits import BenefitToRate
from marketeq.solvers.fixed_point import AndersonMixer, RoundCheck
from marketeq.solvers.networks import PolicyNet, Scales
from marketeq.solvers.quadratic import FeedbackTable


class GridMarket(nn.Module):
    """The market of the adaptive schedule: the volatility on the time grid and the initial price."""

    def __init__(self, n_points: int, alpha: float, s0: float) -> None:
        super().__init__()
        self.register_buffer("sigma", torch.full((n_points,), float(alpha)))
        self.register_buffer("s0", torch.tensor(float(s0)))


class Level:
    """One time grid of the schedule: its model, fixed training and held-out paths, agents and market."""

    def __init__(self, model: MarketModel, train: Brownian | None, valid: Brownian, hidden: list[int]) -> None:
        self.model, self.train, self.valid = model, train, valid
        self.scales = Scales(model)
        # Quadratic costs: the agents are a tabulated linear feedback, the grid's equilibrium computed exactly
        # (solvers.quadratic); no training paths. Otherwise a network trained on ``train``.
        self.linear = model.cost.q == 2.0
        self.policy: FeedbackTable | PolicyNet = (
            FeedbackTable(model) if self.linear else PolicyNet(model, hidden).to(model.device, model.dtype))
        # Power costs: the network's output is the agents' marginal benefit, mapped to their rates.
        self.to_rate = None if self.linear else BenefitToRate(model, self.scales.rate.to(model.device))
        self.market = GridMarket(model.n_steps + 1, model.alpha, model.frictionless_s0).to(model.device,
                                                                                             model.dtype)
        self.mixer = AndersonMixer(positive=True)
        self.checks: list[RoundCheck] = []
        self.last_valid: tuple[np.ndarray, np.ndarray] | None = None  # sigma and mean mu of the last round

    def rates(self, times: Tensor | None = None) -> RatesFn:
        """Zero-sum rates on ``times`` (default: this grid): clearing is part of the policy, not a penalty."""
        times = self.model.times if times is None else times
        if isinstance(self.policy, FeedbackTable):
            A, a, b = self.policy.on(times)

            def linear(k: int, D: Tensor, W: Tensor) -> Tensor:
                r = D.double() @ A[k].T + W.double().unsqueeze(-1) * a[k] + b[k]  # zero-sum by construction
                return r.to(D.dtype)

            return linear
        policy = self.policy
        dtype = next(policy.parameters()).dtype
        times = times.to(dtype)
        gains = policy.grid_gains(times)
        to_rate = self.to_rate or (lambda out: out)

        def rates(k: int, D: Tensor, W: Tensor) -> Tensor:
            r = to_rate(policy(times[k], D.to(dtype), W.to(dtype), gains[k])).to(D.dtype)
            return r - r.mean(-1, keepdim=True)

        return rates

    def sigma_on(self, n_steps: int) -> Tensor:
        """The volatility at the points of a coarser grid of ``n_steps`` steps (a divisor of this one's)."""
        return self.market.sigma[:: self.model.n_steps // n_steps]

    def warm_start(self, coarser: Level) -> None:
        """Start from the coarser grid's answer: the same policy (a function of time) and its volatility
        interpolated onto this grid."""
        if not self.linear:  # a feedback table is computed on its own grid
            self.policy.load_state_dict(coarser.policy.state_dict())
        self.market.sigma.copy_(_halve_steps(coarser.market.sigma.double()).to(self.market.sigma.dtype))
        self.market.s0.copy_(coarser.market.s0)
        if coarser.last_valid is not None:  # the first round's change is measured from the coarser answer
            self.last_valid = tuple(_halve_steps(torch.as_tensor(x)).numpy() for x in coarser.last_valid)


def _halve_steps(coarse: Tensor) -> Tensor:
    """Values on a grid of K steps, linearly interpolated onto the grid of 2K steps."""
    fine = torch.empty(2 * coarse.shape[0] - 1, dtype=coarse.dtype, device=coarse.device)
    fine[0::2], fine[1::2] = coarse, 0.5 * (coarse[:-1] + coarse[1:])
    return fine
