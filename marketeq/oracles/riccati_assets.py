"""d assets, N agents, quadratic cost x' Lambda x / 2, endogenous volatility matrix: exact up to an ODE.

The derivation is in docs/model.md (section 6, several risky assets). With time to maturity
``tau``, deviations ``D^n = phi^n - gbar s/gamma_n`` and the marginal values ``Y^n = Lambda phidot^n``,

    Y^n = -( sum_m F_nm(tau) D^m + H_n(tau) W ),        F_nm, H_n in R^(d x d),
    F_nm' = R_nm Sigma Sigma' - sum_k F_nk Lambda^-1 F_km,    F(0) = 0,
    H_n'  = Sigma E_n         - sum_k F_nk Lambda^-1 H_k,     H(0) = 0,
    Sigma(tau) = A + gbar sum_n H_n(tau) / gamma_n,

with ``R = diag(gamma) - 1 gamma'/N`` and ``E_n = gamma_n Xi_n - (1/N) sum_m gamma_m Xi_m``. That system has
(N d)^2 unknowns. Because the cost matrix is common to all agents, it splits along the eigenvectors of R:
``R = V diag(rho) V^-1`` (real, since R is similar to the symmetric ``Gamma^(1/2) (I - 11'/N) Gamma^(1/2)``),
and ``F = (V x I) diag(f_j) (V^-1 x I)``, ``H = (V x I) h`` turn it into N - 1 independent d x d Riccati
equations (the mode rho = 0 is the clearing constraint and stays 0), coupled only through Sigma:

    f_j' = rho_j Sigma Sigma' - f_j Lambda^-1 f_j,     h_j' = Sigma e_j - f_j Lambda^-1 h_j,
    Sigma = A + sum_j c_j h_j,      e = V^-1 E,      c_j = gbar sum_n V_nj / gamma_n.

The modal deviations ``delta = V^-1 D`` then trade independently, ``deltadot_j = -Lambda^-1 (f_j delta_j +
h_j W)``, so solving and simulating cost O(N d^3) per step instead of O(N^3 d^3).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import solve_ivp

from marketeq.oracles.assets_market import AssetsMarket, AssetsPaths, cost_matrix, euler_price


class RiccatiAssets:
    """The quadratic-cost equilibrium of a d-asset market: ``sigma`` (K+1, d, d) on the grid, ``s0`` (d,),
    :meth:`simulate` along given increments, :meth:`rates` for any state, :meth:`gains` for the full F, H."""

    def __init__(self, gamma: ArrayLike, xi: ArrayLike, A: ArrayLike, lam: ArrayLike, supply: ArrayLike,
                 beta: ArrayLike, horizon: float, steps: int, rtol: float = 1e-12, atol: float = 1e-14,
                 method: str = "DOP853") -> None:
        self.market = m = AssetsMarket.check(gamma, xi, A, supply, beta, horizon, steps)
        self.lam = cost_matrix(lam, m.n_assets)
        self._lam_inv = np.linalg.inv(self.lam)
        self._modes()
        self._solution = self._solve(rtol, atol, method)
        grid = self._state(m.horizon - m.times)
        self._f, self._h, self._risk = grid  # (K+1, M, d, d) twice, (K+1, d, d)
        self.sigma = self._sigma(self._h)
        # Lambda^-1 f_j and Lambda^-1 h_j transposed, for rows of paths (K+1, M, d, d)
        self._gain_f = np.swapaxes(self._lam_inv @ self._f, -1, -2)
        self._gain_h = np.swapaxes(self._lam_inv @ self._h, -1, -2)
        self.s0 = m.beta * m.horizon - m.gbar * self._risk[0] @ m.supply

    # --- the modal decomposition and the ODE in time to maturity -------------------------------------
    def _modes(self) -> None:
        g, n, gbar = self.market.gamma, self.market.n_agents, self.market.gbar
        root = np.sqrt(g)
        rho, U = np.linalg.eigh(np.diag(g) - np.outer(root, root) / n)
        # The smallest eigenvalue is the exact 0 of the direction Gamma^-1 1 (clearing): dropped. The others
        # interlace the gammas, so they are at least min(gamma) and never confused with it.
        self.rho, U = rho[1:], U[:, 1:]
        self._V, self._V_inv = U / root[:, None], U.T * root[None, :]  # (N, M), (M, N)
        gxi = g[:, None, None] * self.market.xi
        self._e = np.einsum("mn,nij->mij", self._V_inv, gxi - gxi.mean(0))
        self._c = gbar * (self._V / g[:, None]).sum(0)

    def _sigma(self, h: np.ndarray) -> np.ndarray:
        return self.market.A + np.einsum("m,...mij->...ij", self._c, h)

    def _unpack(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size, d = len(self.rho) * self.market.n_assets**2, self.market.n_assets
        lead = y.shape[:-1]
        return (y[..., :size].reshape(*lead, -1, d, d), y[..., size:2 * size].reshape(*lead, -1, d, d),
                y[..., 2 * size:].reshape(*lead, d, d))

    def _solve(self, rtol: float, atol: float, method: str):  # noqa: ANN202 - scipy OdeSolution
        rho, e, L_inv = self.rho[:, None, None], self._e, self._lam_inv

        def rhs(_tau: float, y: np.ndarray) -> np.ndarray:
            f, h, _ = self._unpack(y)
            sigma = self._sigma(h)
            risk = sigma @ sigma.T
            fL = f @ L_inv
            return np.concatenate([(rho * risk - fL @ f).ravel(), (sigma @ e - fL @ h).ravel(), risk.ravel()])

        m, d = self.market, self.market.n_assets
        sol = solve_ivp(rhs, (0.0, m.horizon), np.zeros((2 * len(self.rho) + 1) * d * d), method=method,
                        rtol=rtol, atol=atol, dense_output=True)
        if not sol.success:
            raise RuntimeError(f"matrix Riccati ODE failed: {sol.message}")
        return sol.sol

    def _state(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Modal f, h (len(tau), M, d, d) and int_0^tau Sigma Sigma' (len(tau), d, d)."""
        tau = np.clip(np.atleast_1d(np.asarray(tau, dtype=float)), 0.0, self.market.horizon)
        return self._unpack(self._solution(tau).T)

    # --- public quantities ---------------------------------------------------------------------------
    def sigma_at(self, t: ArrayLike) -> np.ndarray:
        """Sigma_t (len(t), d, d) at any times; ``sigma`` holds it on the grid."""
        return self._sigma(self._state(self.market.horizon - np.asarray(t, dtype=float))[1])

    def gains(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """The unreduced gains F (len(t), N, N, d, d) and H (len(t), N, d, d) of
        ``Y^n = -(sum_m F_nm D^m + H_n W)`` (memory grows as N^2: for checks on small markets)."""
        f, h, _ = self._state(self.market.horizon - np.asarray(t, dtype=float))
        F = np.einsum("nj,tjab,jm->tnmab", self._V, f, self._V_inv)
        return F, np.einsum("nj,tjab->tnab", self._V, h)

    def _modal_rates(self, k: int, delta: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(M, B, d) modal rates -Lambda^-1 (f_j delta_j + h_j W) at grid index k, from delta (M, B, d) and
        W (B, d); rows are paths, so the gains act transposed."""
        return -(delta @ self._gain_f[k] + w @ self._gain_h[k])

    def rates(self, k: int, D: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Equilibrium rates (B, N, d) at grid index k for deviations D (B, N, d) and W (B, d)."""
        delta = np.matmul(self._V_inv, D.transpose(1, 0, 2).reshape(self.market.n_agents, -1))
        modal = self._modal_rates(k, delta.reshape(len(self.rho), *w.shape), w)
        return np.matmul(self._V, modal.reshape(len(self.rho), -1)).reshape(-1, *w.shape).transpose(1, 0, 2)

    def simulate(self, dW: ArrayLike) -> AssetsPaths:
        """Euler roll-out ``phi_{k+1} = phi_k + phidot_k dt`` from the frictionless holdings along increments
        dW (B, K, d); mu by the return identity; ``S_{k+1} = S_k + mu_k dt + Sigma_k dW_k`` from ``s0``."""
        m = self.market
        dW_, W = m.increments(dW)
        n_paths, modes = dW_.shape[0], len(self.rho)
        deltas = np.zeros((m.steps + 1, modes, n_paths * m.n_assets))
        speeds = np.zeros_like(deltas)
        delta = np.zeros((modes, n_paths, m.n_assets))
        for k in range(m.steps + 1):
            speed = self._modal_rates(k, delta, W[:, k])
            deltas[k], speeds[k] = delta.reshape(modes, -1), speed.reshape(modes, -1)
            delta = delta + speed * m.dt

        def to_agents(x: np.ndarray) -> np.ndarray:  # (K+1, M, B d) -> (B, K+1, N, d)
            agents = np.matmul(self._V, x).reshape(m.steps + 1, m.n_agents, n_paths, m.n_assets)
            return agents.transpose(2, 0, 1, 3)

        phi, phidot = m.phibar + to_agents(deltas), to_agents(speeds)
        mu = m.return_identity(self.sigma, phi, W)
        S = euler_price(m, self.s0, mu, self.sigma, dW_)
        return AssetsPaths(m.times, W, dW_, phi, phidot, mu, self.sigma, S, self.s0)

    def price(self, k: int, phidot: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The closed-form price (B, d) at grid index k from the rates (B, N, d) and W (B, d):
        ``S_t = beta T + A W_t - gbar (int_t^T Sigma Sigma' du) s - gbar sum_n Lambda phidot^n / gamma_n``."""
        m = self.market
        marginal = np.einsum("n,pni->pi", 1.0 / m.gamma, phidot @ self.lam.T)
        return m.beta * m.horizon + w @ m.A.T - m.gbar * (self._risk[k] @ m.supply + marginal)
