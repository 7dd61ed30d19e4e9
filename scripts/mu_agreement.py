"""Whether the return the agents face, the return the price is built from and the return written to the result
agree, for a run of the adaptive schedule with power costs (issue 14, item 4).

    python scripts/mu_agreement.py RESULT.h5 [--json OUT.json]

The adaptive schedule trains no return network: the agents solve their joint problem against the volatility,
and the return is the multiplier of their clearing constraint, which the link solves for on each roll-out. So:

- **written**: ``mu`` stored in the result (the link solved on the test paths);
- **price**: the stored price path against the Euler price rebuilt from the stored ``mu``, ``sigma`` and
  increments (the same ``mu`` if they agree to rounding), and the terminal condition it meets;
- **training**: the same answer's return on the paths the agents were trained on (mean curve against the
  written one: both estimate the same expectation, on different paths);
- **agents**: the return each agent's own policy implies. In the K-step game agent n's first-order condition
  is ``G'(r_k) = E_k sum_{j>k} (mu_j - gamma sigma_j (sigma_j phi_j + xi W_j)) dt``, so its rates imply
  ``E_k mu_{k+1} = gamma sigma_{k+1} (sigma_{k+1} phi_{k+1} + xi W_k) + (G'(r_k) - E_k G'(r_{k+1})) / dt``,
  with ``E_k`` over the next increment by Gauss-Hermite quadrature on the policy itself (no regression).
  Every agent gives one such return; at a joint optimum they coincide.

Reported per run: the largest gap between the mean curves of the agents' and the written return (relative
to the mean |mu|), the share of the written return's variance across paths that the agents' return explains
(``1 - E(written - agents - b dW_k)^2 / Var(written)``, where ``b dW_k`` removes the written return's own
innovation over the step, which no time-k quantity can explain), mid-horizon (t in [T/4, 3T/4]) and over
all steps, and the spread between the agents' returns.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

import marketeq
from marketeq.api import build_solver
from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.model.rollout import price_path
from marketeq.runtime import Runtime
from marketeq.solvers.fixed_point import interval_sigma

NODES = 9  # Gauss-Hermite nodes for E_k over the next increment


def rebuild(result: marketeq.RunResult) -> tuple[object, MarketModel]:
    """The run's solver with its stored weights, on as many time grids as the run solved."""
    scenario = result.scenario
    dtype = torch.float32 if result.provenance.get("dtype") == "float32" else torch.float64
    solver = build_solver(scenario, Runtime(torch.device("cpu"), dtype, scenario.run.seed))
    solver.load_weights(result.weights)
    grids = result.metrics.get("convergence/grids")
    if grids is None or not hasattr(solver, "levels"):
        raise SystemExit("mu_agreement: not a run of the adaptive schedule (no convergence/grids metric)")
    solver.reached = int(grids.value)
    return solver, solver.model


def agents_return(solver: object, model: MarketModel, paths: marketeq.Paths) -> torch.Tensor:
    """(B, K-1, N) each agent's implied ``E_k mu_{k+1}`` for k = 0 .. K-2 along the stored paths."""
    combination = solver._combination(solver.reached)  # noqa: SLF001 - the answer's policy, as evaluate has it
    rates_fns = [(w, level.rates(model.times)) for w, level in combination]

    def rates(k: int, D: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        return sum(w * fn(k, D, W) for w, fn in rates_fns)

    x, wts = np.polynomial.hermite_e.hermegauss(NODES)
    x, wts = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(wts / wts.sum(), dtype=torch.float64)
    dtype = model.dtype
    phi, W = paths.phi.to(dtype), paths.W.to(dtype)
    sigma = paths.sigma[0].double()
    cost, dt = model.cost, model.dt
    gamma, xi = model.gamma.double(), model.xi.double()
    out = []
    with torch.no_grad():
        for k in range(model.n_steps - 1):
            marginal_now = cost.marginal(paths.phidot[:, k].double())
            D_next = phi[:, k + 1] - model.phibar
            ahead = sum(w * cost.marginal(rates(k + 1, D_next, W[:, k] + math.sqrt(dt) * z).double())
                        for z, w in zip(x.to(dtype), wts, strict=True))
            s = sigma[k + 1]
            risk = gamma * s * (s * phi[:, k + 1].double() + xi * W[:, k].double().unsqueeze(-1))
            out.append(risk + (marginal_now - ahead) / dt)
    return torch.stack(out, 1)


def agreement(result: marketeq.RunResult) -> dict[str, float]:
    solver, model = rebuild(result)
    stored = result.paths
    dW = torch.as_tensor(np.asarray(stored.dW), dtype=torch.float64)
    with torch.no_grad():
        again = solver.evaluate(Brownian.from_increments(dW).to(model.device, model.dtype))
    paths = again
    written = torch.as_tensor(np.asarray(stored.mu), dtype=torch.float64)
    sigma = torch.as_tensor(np.asarray(stored.sigma), dtype=torch.float64)
    S = torch.as_tensor(np.asarray(stored.S), dtype=torch.float64)
    rebuilt_S = price_path(model, written, interval_sigma(sigma), dW, S[:, 0])
    mu_scale = float(written.abs().mean())
    agents = agents_return(solver, model, paths)  # (B, K-1, N)
    mean_agent = agents.mean(-1)
    target = written[:, 1:-1]  # mu_{k+1}, k = 0 .. K-2
    innovation = dW[:, :-1]
    resid = target - mean_agent
    b = (resid * innovation).mean(0) / innovation.pow(2).mean(0)
    unexplained = (resid - b * innovation).pow(2).mean(0)
    share = 1.0 - unexplained / target.var(0).clamp_min(1e-30)
    times = model.times[1:-1].double()
    mid = (times >= 0.25 * model.horizon) & (times <= 0.75 * model.horizon)
    curve_gap = (mean_agent.mean(0) - target.mean(0)).abs() / mu_scale
    spread = agents.std(-1).mean(0) / mu_scale
    with torch.no_grad():  # the answer's return on the paths the agents trained on (the coarsest grid's)
        trained = solver._paths(solver.levels[0].train, solver._combination(solver.reached), model)  # noqa: SLF001
    train_gap = (trained.mu.double().mean(0) - written.mean(0)).abs()[:-1] / mu_scale
    W_end = torch.as_tensor(np.asarray(stored.W), dtype=torch.float64)[:, -1]
    terminal = (S[:, -1] - model.beta * model.horizon - model.alpha * W_end).pow(2).mean()
    return {
        "reproduced_mu_max_abs": float((again.mu.double() - written).abs().max()),
        "price_rebuilt_max_abs": float((rebuilt_S - S).abs().max()),
        "terminal": float(terminal),
        "train_vs_written_mean_sup_rel": float(train_gap.max()),
        "mean_curve_gap_sup_rel": float(curve_gap.max()),
        "mean_curve_gap_mid_rel": float(curve_gap[mid].max()),
        "explained_share_mid": float(share[mid].mean()),
        "explained_share_min_mid": float(share[mid].min()),
        "explained_share_all": float(share.mean()),
        "agents_spread_mid_rel": float(spread[mid].mean()),
        "mu_scale": mu_scale,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    numbers = agreement(marketeq.read_result(args.result))
    for key, value in numbers.items():
        print(f"{key:28s} {value:.4g}")
    if args.json is not None:
        args.json.write_text(json.dumps(numbers, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
