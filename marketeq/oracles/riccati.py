"""N agents, quadratic cost, endogenous volatility: exact up to a matrix Riccati ODE (model.md section 3).

Agents are sorted internally so that the last has the largest gamma; inputs and outputs keep the
scenario's order.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, simulate
from marketeq.oracles.base import Oracle


class RiccatiOracle(Oracle):
    """``sigma_t = c(T-t)`` and linear feedback rates from the ODE for ``H`` (N-1) and ``F`` (N-1, N-1)."""

    name = "riccati"

    def __init__(self, model: MarketModel, rtol: float = 1e-11, atol: float = 1e-13) -> None:
        super().__init__(model)
        if model.cost.q != 2.0 or model.cost.lam <= 0:
            raise ValueError("the Riccati oracle needs a quadratic cost (q = 2) with lambda > 0")
        gamma = model.gamma.detach().cpu().double().numpy()
        xi = model.xi.detach().cpu().double().numpy()
        self.order = np.argsort(gamma, kind="stable")  # largest gamma last
        self._gamma, self._xi = gamma[self.order], xi[self.order]
        self._n = len(gamma)
        self._solution = self._solve(rtol, atol)

    # --- the ODE in time to maturity tau ------------------------------------------------------------
    def _coefficients(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g, n = self._gamma, self._n
        kmat = g[:-1][None, :] * (n * np.eye(n - 1) - 1.0) + g[-1]
        weights = self.model.gbar * (1.0 / g[:-1] - 1.0 / g[-1])
        return kmat, kmat @ self._xi[:-1], weights

    def _solve(self, rtol: float, atol: float):  # noqa: ANN202 - scipy OdeSolution
        n1, lam, alpha, n = self._n - 1, self.model.cost.lam, self.model.alpha, self._n
        kmat, kxi, weights = self._coefficients()

        def rhs(_tau: float, y: np.ndarray) -> np.ndarray:
            H, F = y[:n1], y[n1 : n1 + n1 * n1].reshape(n1, n1)
            c = alpha + weights @ H
            dH = c / n * kxi - F @ H / lam
            dF = c * c / n * kmat - F @ F / lam
            return np.concatenate([dH, dF.ravel(), [c * c]])  # last entry: int_0^tau c^2

        y0 = np.zeros(n1 + n1 * n1 + 1)
        sol = solve_ivp(rhs, (0.0, self.model.horizon), y0, method="Radau", rtol=rtol, atol=atol,
                        dense_output=True)
        if not sol.success:
            raise RuntimeError(f"Riccati ODE failed: {sol.message}")
        return sol.sol

    def _state(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H (M, N-1), F (M, N-1, N-1) and int_0^tau c^2 (M,) at times to maturity tau (M,)."""
        n1 = self._n - 1
        y = self._solution(np.clip(np.atleast_1d(tau), 0.0, self.model.horizon)).T
        return y[:, :n1], y[:, n1 : n1 + n1 * n1].reshape(-1, n1, n1), y[:, -1]

    # --- public quantities ---------------------------------------------------------------------------
    def sigma_curve(self, t: np.ndarray) -> np.ndarray:
        H, _, _ = self._state(self.model.horizon - np.asarray(t, dtype=float))
        return self.model.alpha + H @ self._coefficients()[2]

    @property
    def s0(self) -> float:
        """E[S_0] = beta*T - gbar*s*int_0^T sigma_t^2 dt."""
        m = self.model
        return m.beta * m.horizon - m.gbar * m.supply * float(self._state(np.array([m.horizon]))[2][0])

    def feedback(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Gains on the grid, scenario order: rates_k = A_k @ D_k + b_k * W_k with A (K+1, N, N), b (K+1, N)."""
        m, n, lam = self.model, self._n, self.model.cost.lam
        H, F, _ = self._state(m.horizon - m.times.detach().cpu().double().numpy())
        steps = H.shape[0]
        A_sorted = np.zeros((steps, n, n))
        b_sorted = np.zeros((steps, n))
        A_sorted[:, :-1, :-1] = -F / lam
        b_sorted[:, :-1] = -H / lam
        A_sorted[:, -1, :] = -A_sorted[:, :-1, :].sum(1)  # the last agent takes the other side
        b_sorted[:, -1] = -b_sorted[:, :-1].sum(1)
        inverse = np.argsort(self.order)
        A = A_sorted[:, inverse][:, :, inverse]
        b = b_sorted[:, inverse]
        as_t = lambda x: torch.as_tensor(x, dtype=m.dtype, device=m.device)  # noqa: E731
        return as_t(A), as_t(b)

    def paths(self, brownian: Brownian) -> Paths:
        m = self.model
        A, b = self.feedback()
        sigma_grid = torch.as_tensor(self.sigma_curve(m.times.detach().cpu().numpy()), dtype=m.dtype,
                                     device=m.device)
        return simulate(
            m, brownian,
            rates=lambda k, D, W: D @ A[k].T + W.unsqueeze(-1) * b[k],
            sigma=lambda D, W: sigma_grid,
            mu=lambda D, W, phi, sigma: m.return_identity(sigma, phi, W),
            s0=self.s0,
        )
