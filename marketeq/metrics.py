"""The metrics of model.md section 5, on a fixed test set, with standard errors over paths."""

from __future__ import annotations

import numpy as np
import torch

from marketeq.model.economics import agent_utilities, clearing_error, terminal_error
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, paths_to_torch
from marketeq.results import Metric, mean_se

# Elements (paths x steps x agents) per chunk of the utilities: whole-set temporaries of a thousand agents are
# gigabytes each and took 20 s (2000 paths, 50 steps, N = 1000); chunks that stay in cache take about 1 s.
CHUNK_ELEMENTS = 1 << 20

# Metric names in table order, with a one-line meaning (shared by the CLI, the GUI and the docs).
DESCRIPTIONS: dict[str, str] = {
    "sum_J": "sum over agents of J_n = Euler sum of the utility flow (per path, mean over paths)",
    "clearing": "mean over steps and paths of |(1/N) sum_n phidot^n|^2",
    "terminal": "mean over paths of |S_K - beta*T - alpha*W_K|^2",
    "S0": "initial price S_0 (mean over paths)",
    "mu0": "expected return at t = 0 (mean over paths)",
    "sigma0": "volatility at t = 0 (mean over paths)",
    "oracle/sigma_sup_rel_error": "sup over t_k < T of |sigma_k - sigma*_k| / sigma*_k (path means)",
    "oracle/mu0_rel_error": "|mu_0 - mu*_0| / |mu*_0|",
    "oracle/S0_abs_error": "|S_0 - S*_0| with S*_0 the oracle's continuous-time E[S_0]",
    "oracle/rates_mse": "mean over steps, paths and agents of (phidot - phidot*)^2 on the same paths",
    "oracle/rates_rel_mse": "rates_mse / mean of phidot*^2",
}


@torch.no_grad()
def compute_metrics(model: MarketModel, paths: Paths, oracle_paths: Paths | None = None,
                    oracle_s0: float | None = None) -> dict[str, Metric]:
    """Metrics of ``paths``; with an oracle on the same increments, the errors against it too."""
    p = paths_to_torch(paths, model.device)
    as_np = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
    utilities = as_np(_utilities(model, p))
    out: dict[str, Metric] = {"sum_J": mean_se(utilities.sum(-1))}
    out.update({f"J/{n + 1}": mean_se(utilities[:, n]) for n in range(model.n_agents)})
    out["clearing"] = mean_se(as_np(clearing_error(p.phidot)))
    out["terminal"] = mean_se(as_np(terminal_error(model, p.S, p.W)))
    out["S0"] = mean_se(as_np(p.S[:, 0]))
    out["mu0"] = mean_se(as_np(p.mu[:, 0]))
    out["sigma0"] = mean_se(as_np(p.sigma[:, 0]))
    if oracle_paths is not None:
        out.update(oracle_errors(model, p, paths_to_torch(oracle_paths, model.device), oracle_s0))
    return out


def _utilities(model: MarketModel, p: Paths) -> torch.Tensor:
    """(B, N) J_n per path, computed over chunks of paths."""
    B, K1, N = p.phi.shape
    size = max(1, CHUNK_ELEMENTS // (K1 * N))
    return torch.cat([agent_utilities(model, p.mu[i:i + size], p.sigma[i:i + size], p.phi[i:i + size],
                                      p.phidot[i:i + size], p.W[i:i + size]) for i in range(0, B, size)])


def oracle_errors(model: MarketModel, p: Paths, o: Paths, oracle_s0: float | None) -> dict[str, Metric]:
    """Distances between a solution and an oracle evaluated on the same Brownian increments."""
    if p.W.shape != o.W.shape or not torch.allclose(p.W.double(), o.W.double()):
        raise ValueError("solver and oracle paths must share the same Brownian increments")
    as_np = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
    sigma, sigma_star = as_np(p.sigma.mean(0))[:-1], as_np(o.sigma.mean(0))[:-1]
    mu0, mu0_star = float(p.mu[:, 0].mean()), float(o.mu[:, 0].mean())
    s0_star = float(o.S[:, 0].mean()) if oracle_s0 is None else oracle_s0
    # over chunks of paths: whole, the float64 temporaries are 0.8 GB each at 1000 agents
    B, K1, N = p.phi.shape
    size = max(1, CHUNK_ELEMENTS // (K1 * N))
    sq = torch.cat([(p.phidot[i:i + size, :-1] - o.phidot[i:i + size, :-1]).double().pow(2).mean((1, 2))
                    for i in range(0, B, size)])
    scale = sum(float(o.phidot[i:i + size, :-1].double().pow(2).sum()) for i in range(0, B, size))
    scale /= B * (K1 - 1) * N
    rates = mean_se(as_np(sq))
    return {
        "oracle/sigma_sup_rel_error": Metric(float(np.max(np.abs(sigma - sigma_star) / np.abs(sigma_star)))),
        "oracle/mu0_rel_error": Metric(abs(mu0 - mu0_star) / abs(mu0_star),
                                       mean_se(as_np(p.mu[:, 0])).stderr / abs(mu0_star)),
        "oracle/S0_abs_error": Metric(abs(float(p.S[:, 0].mean()) - s0_star)),
        "oracle/rates_mse": rates,
        "oracle/rates_rel_mse": Metric(rates.value / scale, rates.stderr / scale),
    }
