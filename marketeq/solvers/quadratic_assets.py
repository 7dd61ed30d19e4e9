"""The equilibrium of the time-discretised game with d assets and quadratic costs, exactly (docs/model.md
section 6, "The discrete sweep for several assets").

The one-asset sweep of :mod:`marketeq.solvers.quadratic` with vectors for numbers: the state is
``x = (D, W, 1)`` with ``D`` in R^(N d) (agent-major: entry ``n d + i`` is agent n's deviation in asset i),
``W`` in R^d; the control is the rates, zero-sum across agents for each asset (basis ``Q x I_d``); the cost
of a step is ``dt/2 u' Lambda u`` per agent; the risk term ``gamma_n/2 |Sigma_k' phi^n + Xi_n W|^2`` (without
the endowment's own ``|Xi_n W|^2``) is integrated by the trapezoid rule. The market's volatility step is the
matrix form of :func:`marketeq.solvers.fixed_point.volatility_pass`: the price step over ``[t_k, t_{k+1}]``
uses ``Sigma_{k+1}``, so the loading of ``dW_{i-1}`` in the terminal condition reads

    Sigma_i (I + dt X) = A - dt ( sum_{j=i+1}^{K-1} Sigma_j Sigma_j' dP_j/d dW_{i-1}
                                  + (sum_{j=i+1}^{K-1} Sigma_j) X ),

with ``P_j = (1/N) sum_n gamma_n phi^n_j`` and ``X = (1/N) sum_n gamma_n Xi_n``; the sum over ``j`` goes
through an adjoint ``M_m = Sigma_m Sigma_m' C' + M_{m+1} (I + dt A_m)`` (d x N d, ``C' D = (1/N) sum_n gamma_n
D^n``) as ``sum_{l >= i} dt M_{l+1} a_l``. Plain numpy in float64: the matrices are small (N d + d + 1 square)
and a step is a dozen products, for which numpy's call overhead is the smallest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketeq.oracles.assets_market import AssetsMarket, euler_price

__all__ = ["AssetsEquilibrium", "AssetsProblem", "best_response", "equilibrium_sweep", "market_of",
           "roll_out"]


class AssetsProblem:
    """The agents' linear-quadratic problem and the market's constants of a d-asset market on its grid."""

    def __init__(self, market: AssetsMarket, lam: np.ndarray) -> None:
        n, d = market.n_agents, market.n_assets
        self.market, self.lam, self.n, self.d, self.nd = market, np.asarray(lam, dtype=float), n, d, n * d
        self.size = n * d + d + 1
        centring = np.eye(n) - 1.0 / n
        zero_sum = np.linalg.svd(centring)[0][:, : n - 1]  # the centring's range: rates that sum to zero
        self.basis = np.kron(zero_sum, np.eye(d))  # (N d, (N-1) d): per asset, rates that sum to zero
        self.control_cost = 0.5 * market.dt * np.kron(np.eye(n - 1), self.lam)
        # C (N d, d): C' D = (1/N) sum_n gamma_n D^n
        self.weights = np.kron(market.gamma[:, None] / n, np.eye(d))
        self.exposure = np.einsum("n,nij->ij", market.gamma, market.xi) / n  # X
        self.phibar = market.phibar.reshape(-1)  # (N d,)

    def stage(self, k: int, sigma: np.ndarray) -> np.ndarray:
        """The risk penalty at ``t_k`` against ``Sigma_k`` as a quadratic form in (D, W, 1), weighted by the
        trapezoid rule and dt (constants dropped: they move no rate)."""
        m, d, nd = self.market, self.d, self.nd
        g, phibar = m.gamma, m.phibar
        cov = sigma @ sigma.T
        form = np.zeros((self.size, self.size))
        form[:nd, :nd] = np.kron(np.diag(0.5 * g), cov)
        # gamma_n phi' Sigma Xi_n W, split symmetrically
        form[:nd, nd:nd + d] = (0.5 * g[:, None, None] * (sigma @ m.xi)).reshape(nd, d)
        # gamma_n D' Sigma Sigma' phibar_n, from phi = phibar + D
        form[:nd, -1] = (0.5 * g[:, None] * phibar @ cov).reshape(nd)
        form[nd:nd + d, -1] = 0.5 * np.einsum("n,nji,nj->i", g, m.xi, phibar @ sigma)
        form[nd:, :nd] = form[:nd, nd:].T
        form[-1, nd:nd + d] = form[nd:nd + d, -1]
        weight = (0.5 if k in (0, m.steps) else 1.0) * m.dt
        return weight * form

    def step(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One Riccati step: from the cost-to-go ``x' V x`` after a step, the optimal gain (N d, N d + d + 1)
        of this step's rates and what the step's choice adds to ``V`` (``x_{k+1} = x_k + (dt u, dW, 0)``: the
        increment's variance adds a constant and moves no gain)."""
        dt = self.market.dt
        VB = dt * value[:, : self.nd] @ self.basis
        hessian = self.control_cost + dt * self.basis.T @ VB[: self.nd]
        gain = -np.linalg.solve(hessian, VB.T)
        return self.basis @ gain, VB @ gain

    def split(self, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(A, a, b)`` of ``u_k = A_k D_k + a_k W_k + b_k``: (.., N d, N d), (.., N d, d), (.., N d)."""
        nd, d = self.nd, self.d
        return gains[..., :nd], gains[..., nd:nd + d], gains[..., nd + d]

    def volatility(self, through_rates: np.ndarray, later_sigma: np.ndarray) -> np.ndarray:
        """``Sigma_i`` from ``sum_{l >= i} dt M_{l+1} a_l`` and ``sum_{i < j <= K-1} Sigma_j``."""
        dt = self.market.dt
        rhs = self.market.A - dt * (through_rates + later_sigma @ self.exposure)
        return np.linalg.solve((np.eye(self.d) + dt * self.exposure).T, rhs.T).T  # rhs (I + dt X)^-1

    def expected_s0(self, sigma: np.ndarray, A: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(d,) ``beta T - sum_{k<K} E mu_k dt``, ``E mu_k = Sigma_k Sigma_k' C' (phibar + E D_k)``."""
        m = self.market
        mean, total = np.zeros(self.nd), np.zeros(self.d)
        for k in range(m.steps):
            total += sigma[k] @ (sigma[k].T @ (self.weights.T @ (self.phibar + mean)))
            mean = mean + m.dt * (A[k] @ mean + b[k])
        return m.beta * m.horizon - total * m.dt


@dataclass
class AssetsEquilibrium:
    """The discrete game's equilibrium on one grid: ``sigma`` (K+1, d, d), the feedback ``A`` (K+1, N d, N d),
    ``a`` (K+1, N d, d), ``b`` (K+1, N d) in the agent-major layout, and the expected initial price (d,)."""

    sigma: np.ndarray
    A: np.ndarray
    a: np.ndarray
    b: np.ndarray
    s0: np.ndarray


def _symmetric(value: np.ndarray) -> np.ndarray:
    return 0.5 * (value + value.T)


def best_response(problem: AssetsProblem, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The optimal zero-sum rates against ``sigma`` (K+1, d, d): one backward Riccati pass."""
    steps = problem.market.steps
    gains = np.zeros((steps + 1, problem.nd, problem.size))
    value = problem.stage(steps, sigma[steps])
    for k in range(steps - 1, -1, -1):
        gains[k], added = problem.step(value)
        value = _symmetric(problem.stage(k, sigma[k]) + value + added)
    gains[steps] = gains[steps - 1]  # the rate at T trades nothing; keep the last one for the record
    return problem.split(gains)


def market_of(problem: AssetsProblem, A: np.ndarray, a: np.ndarray,
              b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The volatility (K+1, d, d) and expected initial price (d,) at which the return identity meets the
    terminal condition for the agents' feedback ``(A, a, b)``: the market's half of the sweep alone."""
    m = problem.market
    sigma = np.zeros((m.steps + 1, problem.d, problem.d))
    sigma[m.steps] = m.A
    adjoint = np.zeros((problem.d, problem.nd))  # M_{i+1}; M_K = 0
    through, later = np.zeros((problem.d, problem.d)), np.zeros((problem.d, problem.d))
    for i in range(m.steps - 1, 0, -1):
        if i <= m.steps - 2:
            through = through + m.dt * adjoint @ a[i]
            later = later + sigma[i + 1]
        sigma[i] = problem.volatility(through, later)
        adjoint = _adjoint_step(problem, sigma[i], A[i], adjoint)
    sigma[0] = _first_point(sigma[1:])
    return sigma, problem.expected_s0(sigma, A, b)


def _adjoint_step(problem: AssetsProblem, sigma: np.ndarray, A: np.ndarray,
                  adjoint: np.ndarray) -> np.ndarray:
    """``M_i = Sigma_i Sigma_i' C' + M_{i+1} (I + dt A_i)``."""
    return sigma @ (sigma.T @ problem.weights.T) + adjoint + problem.market.dt * adjoint @ A


def _first_point(later: np.ndarray) -> np.ndarray:
    """``Sigma(t_0)`` extrapolated from the next three points, entry by entry, as
    :func:`marketeq.solvers.fixed_point.first_point` does for one asset."""
    return 3.0 * later[0] - 3.0 * later[1] + later[2] if later.shape[0] >= 3 else later[0].copy()


def equilibrium_sweep(problem: AssetsProblem) -> AssetsEquilibrium:
    """The equilibrium of the K-step d-asset game by one backward pass that alternates the agents' Riccati
    step for the rates at ``t_i`` (it needs ``Sigma`` after ``t_i`` only) with the market's ``Sigma_i``."""
    m, d = problem.market, problem.d
    steps = m.steps
    sigma = np.zeros((steps + 1, d, d))
    sigma[steps] = m.A
    gains = np.zeros((steps + 1, problem.nd, problem.size))
    value = problem.stage(steps, sigma[steps])
    adjoint = np.zeros((d, problem.nd))  # M_{i+1}; M_K = 0: the return at t_K is not in the Euler sum
    through, later = np.zeros((d, d)), np.zeros((d, d))
    for i in range(steps - 1, -1, -1):
        gains[i], added = problem.step(value)
        _, a_i, _ = problem.split(gains[i])
        if i <= steps - 2:
            through = through + m.dt * adjoint @ a_i
            later = later + sigma[i + 1]
        if i == 0:
            break
        sigma[i] = problem.volatility(through, later)
        value = _symmetric(problem.stage(i, sigma[i]) + value + added)
        adjoint = _adjoint_step(problem, sigma[i], problem.split(gains[i])[0], adjoint)
    sigma[0] = _first_point(sigma[1:])
    gains[steps] = gains[steps - 1]
    A, a, b = problem.split(gains)
    return AssetsEquilibrium(sigma, A, a, b, problem.expected_s0(sigma, A, b))


def roll_out(market: AssetsMarket, feedback: AssetsEquilibrium, dW: np.ndarray) -> dict[str, np.ndarray]:
    """The market of a feedback along increments ``dW`` (B, K, d): Euler holdings from the frictionless ones,
    ``mu`` by the return identity, the price from ``s0`` with the step over ``[t_k, t_{k+1}]`` using
    ``Sigma_{k+1}`` (the discrete terminal condition's convention). Fields of a result's paths, numpy."""
    dW_, W = market.increments(dW)
    n_paths, n, d = dW_.shape[0], market.n_agents, market.n_assets
    deviation = np.zeros((n_paths, n * d))
    phi = np.zeros((n_paths, market.steps + 1, n, d))
    phidot = np.zeros_like(phi)
    for k in range(market.steps + 1):
        rate = deviation @ feedback.A[k].T + W[:, k] @ feedback.a[k].T + feedback.b[k]
        phi[:, k], phidot[:, k] = deviation.reshape(n_paths, n, d), rate.reshape(n_paths, n, d)
        deviation = deviation + market.dt * rate
    phi += market.phibar
    mu = market.return_identity(feedback.sigma, phi, W)
    interval = np.concatenate([feedback.sigma[1:], feedback.sigma[-1:]])
    S = euler_price(market, feedback.s0, mu, interval, dW_)
    sigma = np.broadcast_to(feedback.sigma, (n_paths, *feedback.sigma.shape)).copy()
    return {"t": market.times, "W": W, "dW": dW_, "phi": phi, "phidot": phidot, "mu": mu, "sigma": sigma,
            "S": S}
