"""The frictionless equilibrium (lambda = 0): sigma = alpha, constant mu, holdings track -xi W / alpha."""

from __future__ import annotations

import numpy as np
import torch

from marketeq.model.brownian import Brownian
from marketeq.model.rollout import Paths
from marketeq.oracles.base import Oracle


class FrictionlessOracle(Oracle):
    """Exact without trading costs. Holdings move with W, so ``phidot`` is the Euler difference quotient."""

    name = "frictionless"

    def paths(self, brownian: Brownian) -> Paths:
        m = self.model
        W, dW = brownian.W, brownian.dW
        phi = m.phibar - m.xi * W.unsqueeze(-1) / m.alpha
        phidot = torch.cat([torch.diff(phi, dim=1) / m.dt, torch.zeros_like(phi[:, :1])], dim=1)
        mu = torch.full_like(W, m.frictionless_mu)
        sigma = torch.full_like(W, m.alpha)
        S = m.beta * m.horizon + m.alpha * W - m.frictionless_mu * (m.horizon - m.times)
        return Paths(m.times, W, dW, phi, phidot, mu, sigma, S)

    def sigma_curve(self, t: np.ndarray) -> np.ndarray:
        return np.full_like(np.asarray(t, dtype=float), self.model.alpha)

    @property
    def s0(self) -> float:
        return self.model.frictionless_s0
