"""The frictionless d-asset equilibrium (Lambda = 0): Sigma = A, mu = gbar A A' s,
phi^n_t = gbar s/gamma_n - (A')^-1 Xi_n W_t, S_0 = (beta - gbar A A' s) T."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from marketeq.oracles.assets_market import AssetsMarket, AssetsPaths


class FrictionlessAssets:
    """Exact without trading costs: ``sigma`` (K+1, d, d), ``mu`` (d,), ``s0`` (d,) and :meth:`simulate`.
    Holdings move with W, so the reported ``phidot`` is the Euler difference quotient (0 at t_K)."""

    def __init__(self, gamma: ArrayLike, xi: ArrayLike, A: ArrayLike, supply: ArrayLike, beta: ArrayLike,
                 horizon: float, steps: int) -> None:
        self.market = m = AssetsMarket.check(gamma, xi, A, supply, beta, horizon, steps)
        self.mu = m.gbar * m.A @ m.A.T @ m.supply
        self.sigma = np.broadcast_to(m.A, (m.steps + 1, *m.A.shape)).copy()
        self.s0 = (m.beta - self.mu) * m.horizon
        # (A')^-1 Xi_n for every n: the holding that hedges agent n's endowment exactly
        self._hedge = np.linalg.solve(m.A.T[None], m.xi)

    def simulate(self, dW: ArrayLike) -> AssetsPaths:
        m = self.market
        dW_, W = m.increments(dW)
        phi = m.phibar - np.einsum("nij,pkj->pkni", self._hedge, W)
        phidot = np.concatenate([np.diff(phi, axis=1) / m.dt, np.zeros_like(phi[:, :1])], 1)
        mu = np.broadcast_to(self.mu, W.shape).copy()
        S = m.beta * m.horizon + W @ m.A.T - self.mu * (m.horizon - m.times)[None, :, None]
        return AssetsPaths(m.times, W, dW_, phi, phidot, mu, self.sigma, S, self.s0)
