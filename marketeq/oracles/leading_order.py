"""Two agents with power costs: the small-cost ("leading order") approximation of model.md section 3.

Not an exact equilibrium: it is the infinite-horizon, small-cost asymptotics, so it drifts from the
finite-horizon equilibrium near maturity (the rates do not vanish at T) and its volatility is constant.

Conventions, with ``gamma = (gamma_1 + gamma_2)/2``, ``xi = xi_1`` and ``|xi|`` in the fractional powers:

- ``D = phi^1 - (gbar s/gamma_1 - xi_1 W/alpha)``, agent 1's distance to its frictionless holding at t;
- ``phidot^1 = (q gamma xi^4 / (8 lambda alpha^2))^(1/(q+2)) psi(g(c D)/q)`` with
  ``psi(y) = sign(y)|y|^(1/(q-1))``, ``phidot^2 = -phidot^1`` and
  ``c = 2^((q-1)/(q+2)) (q gamma alpha^2/lambda)^(1/(q+2)) (alpha/|xi|)^(2q/(q+2))``.
  The ``/q`` inside ``psi`` follows from scaling the ergodic tracking problem into the equation for g (whose
  nonlinearity is ``g' |g/q|^(1/(q-1))``); model.md prints the rate without it, which for q = 2 (g = -2x)
  would give ``-2 kappa D`` instead of the classic ``-kappa D``, ``kappa = sqrt(gamma alpha^2/lambda)``;
- ``sigma`` constant, the formula of model.md with g'(0); ``mu`` from the return identity (exact for N = 2);
- ``S_0 = beta T - gbar s sigma^2 T``, i.e. ``E[S_T] - E int mu dt`` with ``E[mu_t] = gbar s sigma^2`` (the
  rate is odd in D, so ``E[D] = 0``); not the ``(beta - alpha) T`` of the published benchmark rows.
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
from marketeq.oracles.gfunction import GCurve, g_curve


class LeadingOrderOracle(Oracle):
    """The leading-order approximation for two agents with ``G(x) = (lambda/q)|x|^q``, q in (1, 2]."""

    name = "leading-order (approximate)"
    exact = False

    def __init__(self, model: MarketModel) -> None:
        super().__init__(model)
        lam, q = model.cost.common_lam, model.cost.q
        if model.n_agents != 2 or lam is None or lam <= 0:
            raise ValueError("the leading-order approximation needs two agents sharing one trading cost "
                             "lambda > 0")
        gamma1, gamma2 = (float(v) for v in model.gamma)
        xi = float(model.xi[0])
        if xi == 0:
            raise ValueError("the leading-order approximation needs xi_1 != 0 (without endowment risk "
                             "nobody trades)")
        alpha, gamma = model.alpha, 0.5 * (gamma1 + gamma2)
        self.q, self.xi, self.gamma_mean = q, xi, gamma
        self.g: GCurve = g_curve(q)
        self.rate_scale = (q * gamma * xi**4 / (8.0 * lam * alpha**2)) ** (1.0 / (q + 2.0))
        self.argument_scale = (2.0 ** ((q - 1.0) / (q + 2.0))
                               * (q * gamma * alpha**2 / lam) ** (1.0 / (q + 2.0))
                               * (alpha / abs(xi)) ** (2.0 * q / (q + 2.0)))
        self.sigma = alpha + ((gamma1 - gamma2) / (gamma1 + gamma2)
                              * (lam / (2.0 ** (q - 1.0) * q)) ** (2.0 / (q + 2.0))
                              * (gamma * alpha**2) ** (q / (q + 2.0))
                              * (alpha / abs(xi)) ** ((4.0 - 2.0 * q) / (q + 2.0))
                              * self.g.gp0 * xi / alpha)

    @property
    def kappa(self) -> float:
        """sqrt(gamma alpha^2 / lambda): the q = 2 tracking speed, for comparisons."""
        return math.sqrt(self.gamma_mean * self.model.alpha**2 / self.model.cost.lam)

    def distance(self, D: Tensor, W: Tensor) -> Tensor:
        """Agent 1's distance to its frictionless holding, from D = phi - phibar (..., 2) and W (...)."""
        return D[..., 0] + self.model.xi[0] * W / self.model.alpha

    def rate(self, distance: Tensor) -> Tensor:
        """Agent 1's leading-order trading rate at a distance phi^1 - phibar^1_t (any shape)."""
        x = distance.detach().cpu().double().numpy() * self.argument_scale
        y = self.g(x) / self.q
        out = self.rate_scale * np.sign(y) * np.abs(y) ** (1.0 / (self.q - 1.0))
        return torch.as_tensor(out, dtype=distance.dtype, device=distance.device)

    def paths(self, brownian: Brownian) -> Paths:
        m = self.model
        sigma = torch.full((m.n_steps + 1,), self.sigma, dtype=m.dtype, device=m.device)

        def rates(k: int, D: Tensor, W: Tensor) -> Tensor:
            r1 = self.rate(self.distance(D, W))
            return torch.stack([r1, -r1], dim=-1)

        return simulate(m, brownian.to(m.device, m.dtype), rates,
                        sigma=lambda D, W: sigma,
                        mu=lambda D, W, phi, sigma_t: m.return_identity(sigma_t, phi, W),
                        s0=self.s0)

    def sigma_curve(self, t: np.ndarray) -> np.ndarray:
        return np.full_like(np.asarray(t, dtype=float), self.sigma)

    @property
    def mu0(self) -> float:
        """mu at t = 0 (frictionless start, W_0 = 0): gbar s sigma^2."""
        return self.model.gbar * self.model.supply * self.sigma**2

    @property
    def s0(self) -> float:
        m = self.model
        return m.beta * m.horizon - m.gbar * m.supply * self.sigma**2 * m.horizon
