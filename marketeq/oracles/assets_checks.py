"""Checks that a simulated d-asset quadratic-cost equilibrium is one (docs/model.md section 6).

Each returns a relative error that must vanish (as dt -> 0 where it says so): the checks test the derivation
(optimality, clearing, the price's consistency with its terminal value), not the code's arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from marketeq.oracles.assets_market import AssetsPaths, implied_s0
from marketeq.oracles.riccati_assets import RiccatiAssets


def clearing(paths: AssetsPaths, supply: np.ndarray) -> tuple[float, float]:
    """max |sum_n phidot^n| relative to max |phidot|, and max |sum_n phi^n - s|."""
    rates = float(np.abs(paths.phidot.sum(2)).max() / np.abs(paths.phidot).max())
    return rates, float(np.abs(paths.phi.sum(2) - supply).max())


def s0_spread(oracle: RiccatiAssets, paths: AssetsPaths) -> tuple[float, float]:
    """Largest standard deviation across paths of the implied S_0 (over assets), and the largest distance of
    its mean from the continuous-time S_0. Both O(dt) only if Sigma is the price's true dW loading."""
    implied = implied_s0(oracle.market, paths)
    return float(implied.std(0).max()), float(np.abs(implied.mean(0) - oracle.s0).max())


def _expected_next(oracle: RiccatiAssets, paths: AssetsPaths, k: int) -> tuple[np.ndarray, np.ndarray]:
    """E_k of the rates and of the closed-form price at t_{k+1}: both are linear in W_{k+1}, whose
    conditional mean is W_k, and D_{k+1} is known at t_k."""
    m = oracle.market
    D_next, w = paths.phi[:, k + 1] - m.phibar, paths.W[:, k]
    rates = oracle.rates(k + 1, D_next, w)
    return rates, oracle.price(k + 1, rates, w)


def foc_drift(oracle: RiccatiAssets, paths: AssetsPaths) -> float:
    """Agents' optimality through the dynamics of their marginal values: Y^n = Lambda phidot^n must satisfy
    ``E_k[Y_{k+1}] - Y_k = -flow_k dt`` (flow = mu - gamma_n Sigma (Sigma' phi^n + Xi_n W)) with Y_K = 0.
    Returns max over paths, steps, agents and assets of the one-step residual / dt relative to max |flow|;
    O(dt)."""
    m, lam = oracle.market, oracle.lam
    flow = m.flow(paths.mu, paths.sigma, paths.phi, paths.W)
    worst = float(np.abs(paths.phidot[:, -1]).max())  # Y_T = 0
    for k in range(m.steps):
        rates_next, _ = _expected_next(oracle, paths, k)
        residual = (rates_next - paths.phidot[:, k]) @ lam.T + flow[:, k] * m.dt
        worst = max(worst, float(np.abs(residual).max()) / m.dt)
    return worst / float(np.abs(flow[:, :-1]).max())


def price_drift(oracle: RiccatiAssets, paths: AssetsPaths) -> float:
    """The return identity: the expected change of the closed-form price (built from the terminal value, the
    agents' marginal values and clearing) is mu_k dt. Max relative error over paths and steps; O(dt)."""
    m = oracle.market
    worst = 0.0
    for k in range(m.steps):
        _, price_next = _expected_next(oracle, paths, k)
        now = oracle.price(k, paths.phidot[:, k], paths.W[:, k])
        worst = max(worst, float(np.abs((price_next - now) / m.dt - paths.mu[:, k]).max()))
    return worst / float(np.abs(paths.mu).max())


def foc_regression(oracle: RiccatiAssets, batches: Iterable[AssetsPaths], k: int,
                   lam: np.ndarray | None = None) -> float:
    """Agents' optimality without the model's structure: regress each path's accumulated marginal benefit
    ``y^n_k = sum_{j>=k} flow_j dt`` on the state (1, D^1..D^(N-1), W) at t_k by least squares and compare
    the fitted E_k y^n_k with Lambda phidot^n_k (relative L2 error over all paths of all batches). ``lam``:
    the cost matrix to judge the rates by, if not the oracle's own.

    Sampling noise ~ 1/sqrt(paths) dominates the O(dt) bias. It is reduced by a control variate that uses only
    that Sigma is deterministic and W a martingale: the endowment term -gamma_n Sigma_j Xi_n W_j of the flow
    is replaced by its conditional mean -gamma_n Sigma_j Xi_n W_k."""
    m = oracle.market
    sums: list[np.ndarray] = []
    for paths in batches:
        future = paths.W[:, k:-1] - paths.W[:, k : k + 1]
        endowment = np.einsum("kij,njl,pkl->pkni", paths.sigma[k:-1], m.xi, future) * m.gamma[:, None]
        flow = m.flow(paths.mu[:, k:-1], paths.sigma[k:-1], paths.phi[:, k:-1], paths.W[:, k:-1]) + endowment
        y = (flow.sum(1) * m.dt).reshape(len(flow), -1)
        D = (paths.phi[:, k] - m.phibar)[:, :-1].reshape(len(y), -1)  # the last agent's is minus their sum
        X = np.concatenate([np.ones((len(y), 1)), D, paths.W[:, k]], 1)
        target = (paths.phidot[:, k] @ (oracle.lam if lam is None else lam).T).reshape(len(y), -1)
        parts = [X.T @ X, X.T @ y, X.T @ target, np.array((target * target).sum())]
        sums = parts if not sums else [a + b for a, b in zip(sums, parts, strict=True)]
    xx, xy, xt, tt = sums
    coef = np.linalg.lstsq(xx, xy, rcond=None)[0]  # normal equations: batches never need to be held together
    miss = np.einsum("ia,ij,ja->", coef, xx, coef) - 2 * np.einsum("ia,ia->", coef, xt) + tt
    return float(np.sqrt(max(miss, 0.0) / tt))


def price_gap(oracle: RiccatiAssets, paths: AssetsPaths) -> float:
    """Largest distance between the Euler price path and the closed-form price, relative to max |S|."""
    steps = range(oracle.market.steps + 1)
    closed = np.stack([oracle.price(k, paths.phidot[:, k], paths.W[:, k]) for k in steps], 1)
    return float(np.abs(closed - paths.S).max() / np.abs(paths.S).max())
