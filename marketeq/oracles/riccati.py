"""N agents, quadratic cost, endogenous volatility: exact up to a matrix Riccati ODE (model.md section 3).

Written for every agent at once, with per-agent cost scales ``lambda_n``. Each agent's marginal value of
holding more is linear in the state, ``Y^n = lambda_n phidot^n = -(F(tau) D + H(tau) W)_n`` with time to
maturity ``tau``; matching drifts gives, with ``w_n = (1/lambda_n) / sum_m 1/lambda_m`` (1/N for a
common cost),

    F' = sigma^2 (diag(gamma) - 1 (w*gamma)^T) - F Lambda^-1 F,      F(0) = 0,
    H' = sigma (gamma*xi - sum_m w_m gamma_m xi_m) - F Lambda^-1 H,   H(0) = 0,
    sigma = alpha + gbar sum_n H_n / gamma_n.

The volatility follows from ``sum_n Y^n/gamma_n = E_t int (mu/gbar - s sigma^2) du`` (clearing and
sum xi = 0), so ``S_t = beta*T + alpha*W_t - gbar*s*int_t^T sigma^2 du + gbar sum_n (F D + H W)_n / gamma_n``.
With a common cost, eliminating the agent with the largest gamma gives the (N-1)-dimensional system of
model.md. The system treats all agents alike, so their order does not matter and nothing needs sorting.
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
    """``sigma_t = alpha + gbar sum_n H_n(T-t)/gamma_n`` and linear feedback rates ``-(F D + H W)/lambda``."""

    name = "riccati"

    def __init__(self, model: MarketModel, rtol: float = 1e-11, atol: float = 1e-13) -> None:
        super().__init__(model)
        if model.cost.q != 2.0 or model.cost.frictionless:
            raise ValueError("the Riccati oracle needs a quadratic cost (q = 2) with lambda > 0")
        as_np = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
        self._gamma, self._xi = as_np(model.gamma), as_np(model.xi)
        # float64 explicitly: a Python float through torch.as_tensor would become float32 (lambda off by 2e-8)
        lam = as_np(torch.as_tensor(model.cost.lam, dtype=torch.float64))
        self._lam = np.broadcast_to(lam, self._gamma.shape).copy()
        self._n = len(self._gamma)
        self._solution = self._solve(rtol, atol)

    # --- the ODE in time to maturity tau ------------------------------------------------------------
    def _coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """The risk matrix diag(gamma) - 1 (w gamma)^T (N, N) and exposure vector (N,) of the drifts."""
        g, xi, w = self._gamma, self._xi, 1.0 / self._lam / np.sum(1.0 / self._lam)
        risk = np.diag(g) - np.outer(np.ones(self._n), w * g)
        return risk, g * xi - np.sum(w * g * xi)

    def _solve(self, rtol: float, atol: float):  # noqa: ANN202 - scipy OdeSolution
        n, alpha, gbar = self._n, self.model.alpha, self.model.gbar
        risk, exposure = self._coefficients()
        inv_lam, inv_gamma = 1.0 / self._lam, 1.0 / self._gamma

        def rhs(_tau: float, y: np.ndarray) -> np.ndarray:
            H, F = y[:n], y[n : n + n * n].reshape(n, n)
            sigma = alpha + gbar * inv_gamma @ H
            dH = sigma * exposure - F @ (inv_lam * H)
            dF = sigma * sigma * risk - (F * inv_lam) @ F
            return np.concatenate([dH, dF.ravel(), [sigma * sigma]])  # last entry: int_0^tau sigma^2

        sol = solve_ivp(rhs, (0.0, self.model.horizon), np.zeros(n + n * n + 1), method="Radau", rtol=rtol,
                        atol=atol, dense_output=True)
        if not sol.success:
            raise RuntimeError(f"Riccati ODE failed: {sol.message}")
        return sol.sol

    def _state(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H (M, N), F (M, N, N) and int_0^tau sigma^2 (M,) at times to maturity tau (M,)."""
        n = self._n
        y = self._solution(np.clip(np.atleast_1d(tau), 0.0, self.model.horizon)).T
        return y[:, :n], y[:, n : n + n * n].reshape(-1, n, n), y[:, -1]

    # --- public quantities ---------------------------------------------------------------------------
    def sigma_curve(self, t: np.ndarray) -> np.ndarray:
        H, _, _ = self._state(self.model.horizon - np.asarray(t, dtype=float))
        return self.model.alpha + self.model.gbar * H @ (1.0 / self._gamma)

    @property
    def s0(self) -> float:
        """E[S_0] = beta*T - gbar*s*int_0^T sigma_t^2 dt."""
        m = self.model
        return m.beta * m.horizon - m.gbar * m.supply * float(self._state(np.array([m.horizon]))[2][0])

    def feedback(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Gains on the grid: rates_k = A_k @ D_k + b_k * W_k with A (K+1, N, N), b (K+1, N)."""
        m = self.model
        H, F, _ = self._state(m.horizon - m.times.detach().cpu().double().numpy())
        A = -F / self._lam[None, :, None]
        b = -H / self._lam[None, :]
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
