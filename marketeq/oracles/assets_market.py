"""Several risky assets (docs/model.md section 6): checked parameters and simulated paths, as plain arrays.

Shapes: N agents, d assets, B paths, K Euler steps; time-indexed arrays have K+1 points ``t_0..t_K``.
Everything is float64 numpy; Brownian increments may be given as any array-like (a CPU tensor too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def _array(name: str, value: ArrayLike, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A finite float64 array of the given shape, or a one-line ValueError naming the argument."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not numbers; give {what}") from None
    if arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape}, expected {shape}: give {what}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains inf or nan; give finite numbers")
    return arr


def cost_matrix(lam: ArrayLike, d: int) -> np.ndarray:
    """The cost matrix Lambda of G(x) = x' Lambda x / 2 from a (d, d) matrix, a (d,) diagonal or one number
    (times the identity); it must be symmetric positive definite, since each agent's rate is Lambda^-1 times
    its marginal value."""
    raw = lam
    if np.ndim(lam) == 0:
        raw = _array("Lambda", lam, (), "a number, d per-asset costs or a d x d matrix") * np.eye(d)
    elif np.ndim(lam) == 1:
        raw = np.diag(_array("Lambda", lam, (d,), f"{d} per-asset costs or a {d} x {d} matrix"))
    what = f"a symmetric positive definite {d} x {d} matrix (or {d} diagonal costs)"
    mat = _array("Lambda", raw, (d, d), what)
    if not np.allclose(mat, mat.T, rtol=1e-12, atol=1e-14 * np.abs(mat).max()):
        raise ValueError("Lambda: not symmetric; give a symmetric positive definite matrix")
    try:
        np.linalg.cholesky(mat)
    except np.linalg.LinAlgError:
        raise ValueError(f"Lambda: not positive definite (eigenvalues {np.linalg.eigvalsh(mat)}); "
                         "every direction of trading must cost something") from None
    return mat


@dataclass(frozen=True)
class AssetsMarket:
    """The parameters of a d-asset market with N agents, checked (see :meth:`check`)."""

    gamma: np.ndarray  # (N,) risk aversions
    xi: np.ndarray  # (N, d, d) endowment loadings Xi_n, summing to 0
    A: np.ndarray  # (d, d) terminal loading, S_T = beta T + A W_T
    supply: np.ndarray  # (d,)
    beta: np.ndarray  # (d,)
    horizon: float  # T
    steps: int  # K

    @classmethod
    def check(cls, gamma: ArrayLike, xi: ArrayLike, A: ArrayLike, supply: ArrayLike, beta: ArrayLike,
              horizon: float, steps: int) -> AssetsMarket:
        """Validate the arrays; every problem is a one-line ValueError naming the argument and the fix."""
        if np.ndim(A) != 2 or np.shape(A)[0] == 0:
            raise ValueError(f"A: shape {np.shape(A)}, expected (d, d): a square matrix, a row per asset")
        d = int(np.shape(A)[0])
        A_ = _array("A", A, (d, d), "a square matrix, a row per asset")
        if np.linalg.cond(A_) > 1e12:
            raise ValueError(f"A: singular (condition number {np.linalg.cond(A_):.3g}); the terminal values "
                             "S_T = beta T + A W_T need an invertible A")
        if np.ndim(gamma) != 1 or np.size(gamma) < 2:
            raise ValueError(f"gamma: shape {np.shape(gamma)}, expected (N,) with N >= 2: a risk aversion "
                             "per agent")
        n = int(np.size(gamma))
        gamma_ = _array("gamma", gamma, (n,), "one risk aversion per agent")
        if np.any(gamma_ <= 0):
            raise ValueError("gamma: must be > 0 (absolute risk aversions)")
        xi_ = _array("Xi", xi, (n, d, d), f"one {d} x {d} endowment loading per agent")
        scale = max(float(np.abs(xi_).max()), 1.0)
        total = np.abs(xi_.sum(0)).max()
        if total > 1e-9 * scale:
            raise ValueError(f"Xi: the agents' loadings sum to a matrix with entries up to {total:.3g}: "
                             "the endowments must net out (sum_n Xi_n = 0)")
        supply_ = _array("s", supply, (d,), f"the supply of each of the {d} assets")
        beta_ = _array("beta", beta, (d,), f"the drift of each of the {d} terminal values")
        if not (np.isfinite(horizon) and horizon > 0):
            raise ValueError(f"T: {horizon}: the horizon must be a positive number")
        if int(steps) != steps or steps < 1:
            raise ValueError(f"K: {steps}: the number of Euler steps must be a positive integer")
        return cls(gamma_, xi_, A_, supply_, beta_, float(horizon), int(steps))

    @property
    def n_agents(self) -> int:
        return int(self.gamma.shape[0])

    @property
    def n_assets(self) -> int:
        return int(self.A.shape[0])

    @property
    def dt(self) -> float:
        return self.horizon / self.steps

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.horizon, self.steps + 1)

    @property
    def gbar(self) -> float:
        return float(1.0 / np.sum(1.0 / self.gamma))

    @property
    def phibar(self) -> np.ndarray:
        """(N, d) frictionless starting holdings gbar s / gamma_n."""
        return self.gbar * self.supply[None, :] / self.gamma[:, None]

    def increments(self, dW: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Checked increments (B, K, d) and the path W (B, K+1, d) with W_0 = 0."""
        arr = np.asarray(dW, dtype=float)
        if arr.ndim != 3 or arr.shape[1:] != (self.steps, self.n_assets):
            raise ValueError(f"dW: shape {arr.shape}, expected (B, {self.steps}, {self.n_assets}): "
                             "paths x steps x assets")
        return arr, np.concatenate([np.zeros_like(arr[:, :1]), np.cumsum(arr, 1)], 1)

    def return_identity(self, sigma: np.ndarray, phi: np.ndarray, W: np.ndarray) -> np.ndarray:
        """mu_t = (1/N) Sigma_t sum_n gamma_n (Sigma_t' phi^n_t + Xi_n W_t): (B, K+1, d) from sigma
        (K+1, d, d), phi (B, K+1, N, d) and W (B, K+1, d)."""
        weighted = np.einsum("n,pkni->pki", self.gamma, phi)
        gxi = np.einsum("n,nij->ij", self.gamma, self.xi)
        inner = np.einsum("kij,pki->pkj", sigma, weighted) + np.einsum("jl,pkl->pkj", gxi, W)
        return np.einsum("kij,pkj->pki", sigma, inner) / self.n_agents

    def flow(self, mu: np.ndarray, sigma: np.ndarray, phi: np.ndarray, W: np.ndarray) -> np.ndarray:
        """(B, K+1, N, d) marginal-benefit flow mu - gamma_n Sigma (Sigma' phi^n + Xi_n W), whose conditional
        future integral is agent n's marginal value Y^n."""
        risk = np.einsum("kij,pkni->pknj", sigma, phi) + np.einsum("njl,pkl->pknj", self.xi, W)
        return mu[:, :, None, :] - self.gamma[None, None, :, None] * np.einsum("kij,pknj->pkni", sigma, risk)

    def terminal_price(self, w_end: np.ndarray) -> np.ndarray:
        """(B, d) S_T = beta T + A W_T."""
        return self.beta * self.horizon + w_end @ self.A.T


@dataclass(frozen=True)
class AssetsPaths:
    """A simulated d-asset market: ``t`` (K+1,), ``W`` (B, K+1, d), ``dW`` (B, K, d), ``phi``/``phidot``
    (B, K+1, N, d), ``mu``/``S`` (B, K+1, d), ``sigma`` (K+1, d, d) (deterministic), ``s0`` (d,)
    (continuous-time S_0). Rates at t_K are reported but unused by the Euler sums."""

    t: np.ndarray
    W: np.ndarray
    dW: np.ndarray
    phi: np.ndarray
    phidot: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    S: np.ndarray
    s0: np.ndarray


def euler_price(market: AssetsMarket, s0: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                dW: np.ndarray) -> np.ndarray:
    """(B, K+1, d) price S_{k+1} = S_k + mu_k dt + Sigma_k dW_k from S_0."""
    steps = mu[:, :-1] * market.dt + np.einsum("kij,pkj->pki", sigma[:-1], dW)
    start = np.broadcast_to(s0, (dW.shape[0], 1, market.n_assets))
    return np.concatenate([start, start + np.cumsum(steps, 1)], 1)


def implied_s0(market: AssetsMarket, paths: AssetsPaths) -> np.ndarray:
    """(B, d) the S_0 each path implies: S_T - sum_k (mu_k dt + Sigma_k dW_k). Its spread across paths is the
    discretisation error of a price consistent with its terminal value; it vanishes as dt -> 0."""
    moves = paths.mu[:, :-1] * market.dt + np.einsum("kij,pkj->pki", paths.sigma[:-1], paths.dW)
    return market.terminal_price(paths.W[:, -1]) - moves.sum(1)
