"""Exogenous constant volatility sigma = alpha, quadratic cost: the tanh feedback (model.md section 3).

Not an equilibrium of the full model (the terminal price is not matched); it is the classic closed form
the Riccati oracle reduces to when all agents share one gamma, and the single-agent benchmark.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, simulate
from marketeq.oracles.base import Oracle


def tanh_gain(kappa: float, tau: Tensor | float) -> Tensor | float:
    """Feedback gain kappa*tanh(kappa*tau): the optimal rate is -gain * (phi - target)."""
    if isinstance(tau, Tensor):
        return kappa * torch.tanh(kappa * tau)
    return kappa * math.tanh(kappa * tau)


class TwoAgentTanhOracle(Oracle):
    """Two agents, sigma fixed at alpha; kappa = sqrt(gamma*alpha^2/lambda) with gamma the mean of the two."""

    name = "tanh"

    def __init__(self, model: MarketModel) -> None:
        super().__init__(model)
        cost = model.cost
        if model.n_agents != 2 or cost.q != 2.0 or cost.frictionless or cost.common_lam is None:
            raise ValueError("the tanh oracle needs two agents and a quadratic cost with lambda > 0")
        self.gamma_mean = float(model.gamma.mean())
        self.kappa = math.sqrt(self.gamma_mean * model.alpha**2 / model.cost.common_lam)

    def target(self, W: Tensor) -> Tensor:
        """(B,) agent 1's frictionless holding gbar*s/gamma_1 - xi_1 W / alpha."""
        m = self.model
        return m.phibar[0] - m.xi[0] * W / m.alpha

    def paths(self, brownian: Brownian) -> Paths:
        m = self.model
        tau = m.horizon - m.times
        gap = lambda D, W: D[..., 0] + m.phibar[0] - self.target(W)  # noqa: E731 - phi^1 - phibar^1_t
        spread = 0.5 * float(m.gamma[0] - m.gamma[1]) * m.alpha**2

        def rates(k: int, D: Tensor, W: Tensor) -> Tensor:
            r1 = -tanh_gain(self.kappa, tau[k]) * gap(D, W)
            return torch.stack([r1, -r1], dim=-1)

        return simulate(
            m, brownian, rates,
            sigma=lambda D, W: m.alpha,
            mu=lambda D, W, phi, sigma: m.frictionless_mu + spread * gap(D, W),
            s0=m.frictionless_s0,
        )

    def sigma_curve(self, t: np.ndarray) -> np.ndarray:
        return np.full_like(np.asarray(t, dtype=float), self.model.alpha)

    @property
    def s0(self) -> float:
        return self.model.frictionless_s0
