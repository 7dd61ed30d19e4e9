"""The metrics of a several-asset market (docs/model.md sections 5 and 6), on its test set, in numpy.

The names follow the one-asset metrics, with the asset in the name where a quantity is per asset:
``S0/2`` is asset 2's initial price, ``sigma0/1,2`` the loading of asset 1 on factor 2 at t = 0.
"""

from __future__ import annotations

import numpy as np

from marketeq.results import Metric, Paths, mean_se
from marketeq.scenario.assets import AssetArrays

__all__ = ["ASSET_DESCRIPTIONS", "assets_metrics", "assets_oracle_errors", "cost"]

ASSET_DESCRIPTIONS: dict[str, str] = {
    "sum_J": "sum over agents of J_n = Euler sum of the utility flow (per path, mean over paths)",
    "clearing": "mean over steps and paths of |(1/N) sum_n phidot^n|^2, summed over the assets",
    "terminal": "mean over paths of |S_K - beta*T - A W_K|^2, summed over the assets",
    "S0/i": "asset i's initial price S_0 (mean over paths)",
    "mu0/i": "asset i's expected return at t = 0 (mean over paths)",
    "sigma0/i,j": "asset i's loading on factor j at t = 0 (mean over paths)",
    "oracle/sigma_sup_rel_error": "sup over t_k < T and entries of |Sigma_k - Sigma*_k| / max |Sigma*_k|",
    "oracle/mu0_rel_error": "max over assets of |mu_0 - mu*_0|, relative to max |mu*_0|",
    "oracle/rates_rel_mse": "mean of |phidot - phidot*|^2 over steps, paths, agents and assets / mean |phidot*|^2",
}


def cost(arrays: AssetArrays, phidot: np.ndarray) -> np.ndarray:
    """G(phidot) over the last axis (d): x' Lambda x / 2 for q = 2 (Lambda a number, diagonal or matrix),
    sum_i lambda_i/q |x_i|^q otherwise."""
    lam = np.asarray(arrays.lam, dtype=float)
    if lam.ndim == 2:
        return 0.5 * np.einsum("...i,ij,...j->...", phidot, lam, phidot)
    return (lam / arrays.q * np.abs(phidot) ** arrays.q).sum(-1)


def _utilities(arrays: AssetArrays, p: Paths, dt: float) -> np.ndarray:
    """(B, N) J_n = sum_{k<K} (mu' phi - gamma_n/2 |Sigma' phi + Xi_n W|^2 - G(phidot)) dt per path."""
    mu, sigma, phi, W = p.mu[:, :-1], p.sigma[:, :-1], p.phi[:, :-1], p.W[:, :-1]
    gain = np.einsum("pki,pkni->pkn", mu, phi)
    exposure = np.einsum("pkij,pkni->pknj", sigma, phi) + np.einsum("njl,pkl->pknj", arrays.xi, W)
    risk = 0.5 * arrays.gamma * (exposure**2).sum(-1)
    return ((gain - risk - cost(arrays, p.phidot[:, :-1])).sum(1)) * dt


def assets_metrics(arrays: AssetArrays, p: Paths) -> dict[str, Metric]:
    """Utilities, clearing, the terminal condition and the t = 0 market of ``p`` (numpy, asset axes)."""
    dt = arrays.horizon / arrays.steps
    utilities = _utilities(arrays, p, dt)
    out: dict[str, Metric] = {"sum_J": mean_se(utilities.sum(-1))}
    out.update({f"J/{n + 1}": mean_se(utilities[:, n]) for n in range(utilities.shape[1])})
    out["clearing"] = mean_se((p.phidot[:, :-1].mean(2) ** 2).sum(-1).mean(1))
    terminal = arrays.beta * arrays.horizon + p.W[:, -1] @ arrays.A.T
    out["terminal"] = mean_se(((p.S[:, -1] - terminal) ** 2).sum(-1))
    d = arrays.A.shape[0]
    out.update({f"S0/{i + 1}": mean_se(p.S[:, 0, i]) for i in range(d)})
    out.update({f"mu0/{i + 1}": mean_se(p.mu[:, 0, i]) for i in range(d)})
    out.update({f"sigma0/{i + 1},{j + 1}": mean_se(p.sigma[:, 0, i, j]) for i in range(d) for j in range(d)})
    return out


def assets_oracle_errors(p: Paths, o: Paths) -> dict[str, Metric]:
    """Distances between a several-asset solution and an oracle on the same increments."""
    if p.W.shape != o.W.shape or not np.allclose(p.W, o.W):
        raise ValueError("solver and oracle paths must share the same Brownian increments")
    sigma, star = p.sigma.mean(0)[:-1], o.sigma.mean(0)[:-1]  # (K, d, d)
    scale = np.abs(star).max(axis=(1, 2))
    mu0, mu0_star = p.mu[:, 0].mean(0), o.mu[:, 0].mean(0)
    rates = mean_se(((p.phidot[:, :-1] - o.phidot[:, :-1]) ** 2).mean((1, 2, 3)))
    norm = float((o.phidot[:, :-1] ** 2).mean())
    return {
        "oracle/sigma_sup_rel_error": Metric(float((np.abs(sigma - star).max(axis=(1, 2)) / scale).max())),
        "oracle/mu0_rel_error": Metric(float(np.abs(mu0 - mu0_star).max() / np.abs(mu0_star).max())),
        "oracle/rates_rel_mse": Metric(rates.value / norm, rates.stderr / norm),
    }
