"""Grid-refinement study of the two-agent PDE reference (marketeq/oracles/pde.py), printed as markdown tables.

1. q = 2: the error against the Riccati oracle (three scenarios at the default grid; E2's agents under time
   refinement, with the observed order).
2. q = 3/2 (E2): the change of sigma_0, mu_0, S_0 and sup_t E[sigma_t] between successive grids, refining phi,
   w and time one at a time around the default grid, with the observed order.
3. E2 for lambda = 1e-2, 3e-3, 1e-3, 3e-4: the leading-order approximation against the PDE.
4. E2: the time of `marketeq oracle` (the reference with its error estimate on 3000 test paths), the solver's
   recorded numbers (data/results/compare_e2.json, every seed) against it, and the equilibrium gap at the PDE
   solution for q = 2 and q = 3/2: `marketeq gap` (the iteration kept on validation paths) beside the last
   iteration on as many training paths as test paths (what the gap was before the selection).

Writes a JSON record (git commit, command, machine, numbers) to data/results/pde_convergence.json.
Usage: OMP_NUM_THREADS=1 python scripts/pde_convergence.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, records_dir, save_record  # noqa: E402

from marketeq import load_scenario, oracle_result  # noqa: E402
from marketeq.gap import best_response_gap, rebuild_market, result_gap  # noqa: E402
from marketeq.metrics import oracle_errors  # noqa: E402
from marketeq.model.brownian import BrownianSource, brownian_test_set, stream_seed  # noqa: E402
from marketeq.model.market import MarketModel  # noqa: E402
from marketeq.oracles import LeadingOrderOracle, PdeOracle, RiccatiOracle  # noqa: E402
from marketeq.oracles.pde import cached_solution  # noqa: E402
from marketeq.oracles.pde_grid import PdeGrid  # noqa: E402

E2 = load_scenario(ROOT / "scenarios" / "paper_e2_power_2_agents.toml")
DEFAULT = PdeGrid()
PATHS = 1000


def table(title: str, header: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """Print a markdown table and return it for the record."""
    cell = lambda v: f"{v:.3g}" if isinstance(v, float) and abs(v) < 1e-2 else (  # noqa: E731
        f"{v:.6g}" if isinstance(v, float) else str(v))
    print(f"\n**{title}**\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
    return {"title": title, "header": header, "rows": rows}


def grid_text(grid: PdeGrid, steps: int) -> str:
    return f"{grid.n_phi} x {grid.n_w} x {grid.substeps * steps}"


def headline(oracle: PdeOracle, model: MarketModel) -> tuple[np.ndarray, Any]:
    """sigma_0, mu_0, S_0, sup_t E[sigma_t] on the seeded paths, and the paths."""
    paths = oracle.paths(brownian_test_set(0, PATHS, model.n_steps, model.dt))
    sigma = paths.sigma.mean(0).numpy()
    return np.array([sigma[0], float(paths.mu[:, 0].mean()), oracle.s0, sigma[:-1].max()]), paths


def order(errors: list[float]) -> list[Any]:
    """log2 of the ratio of successive errors (halving the step each time)."""
    pairs = zip(errors, errors[1:], strict=False)
    return ["—", *(math.log2(a / b) if a > 0 and b > 0 else "—" for a, b in pairs)]


def quadratic(quick: bool) -> list[dict[str, Any]]:
    cases = {
        "E2 agents, T 0.4, lambda 1e-2": E2.replace(**{"frictions.q": 2.0}),
        "gamma (2, 0.5), xi (-1, 1), T 0.2, lambda 3e-3": E2.replace(
            **{"frictions.q": 2.0, "frictions.lambda": 3e-3, "market.horizon": 0.2, "market.steps": 50},
            agents=[{"gamma": 2.0, "xi": -1.0}, {"gamma": 0.5, "xi": 1.0}]),
        "gamma (1.5, 1), xi (5, -5), T 1, lambda 3e-2, alpha 0.8": E2.replace(
            **{"frictions.q": 2.0, "frictions.lambda": 3e-2, "market.horizon": 1.0, "market.steps": 100,
               "market.alpha": 0.8}, agents=[{"gamma": 1.5, "xi": 5.0}, {"gamma": 1.0, "xi": -5.0}]),
    }
    header = ["scenario", "grid (phi x w x t)", "sigma sup rel", "mu_0 rel", "S_0 abs", "rates rel MSE", "s"]
    rows, out = [], []
    grid = PdeGrid(101, 21, DEFAULT.substeps) if quick else DEFAULT
    for name, scenario in cases.items():
        model = MarketModel.from_scenario(scenario)
        test = brownian_test_set(0, PATHS, model.n_steps, model.dt)
        started = time.perf_counter()
        pde = PdeOracle(model, grid, rates="continuous")
        paths = pde.paths(test)
        wall = time.perf_counter() - started
        riccati = RiccatiOracle(model)
        err = {k: v.value for k, v in oracle_errors(model, paths, riccati.paths(test), riccati.s0).items()}
        rows.append([name, grid_text(grid, model.n_steps), err["oracle/sigma_sup_rel_error"],
                     err["oracle/mu0_rel_error"], err["oracle/S0_abs_error"], err["oracle/rates_rel_mse"],
                     wall])
    out.append(table("q = 2: PDE against the Riccati oracle (1000 seeded paths)", header, rows))
    # time refinement (the solution is linear in phi and w, so only time matters)
    model = MarketModel.from_scenario(cases["E2 agents, T 0.4, lambda 1e-2"])
    test = brownian_test_set(0, PATHS, model.n_steps, model.dt)
    riccati = RiccatiOracle(model)
    ref = riccati.paths(test)
    rows, sups = [], []
    for substeps in (1, 2, 4, 8):
        grid = PdeGrid(101, 21, substeps)
        pde = PdeOracle(model, grid, rates="continuous")  # Riccati's rates are the continuous-time ones
        err = {k: v.value for k, v in oracle_errors(model, pde.paths(test), ref, riccati.s0).items()}
        sups.append(err["oracle/sigma_sup_rel_error"])
        rows.append([grid_text(grid, model.n_steps), err["oracle/sigma_sup_rel_error"],
                     err["oracle/mu0_rel_error"],
                     err["oracle/S0_abs_error"], err["oracle/rates_rel_mse"]])
    for row, p in zip(rows, order(sups), strict=True):
        row.append(p)
    out.append(table("q = 2, E2's agents: error against Riccati under time refinement",
                     ["grid", "sigma sup rel", "mu_0 rel", "S_0 abs", "rates rel MSE", "observed order"],
                     rows))
    return out


def power_refinement(quick: bool) -> dict[str, Any]:
    model = MarketModel.from_scenario(E2)
    n, w, s = DEFAULT.n_phi, DEFAULT.n_w, DEFAULT.substeps
    ladders = {
        "phi": [PdeGrid(p, w, s) for p in ((101, 201, 401) if quick else (101, 201, 401, 801))],
        "w": [PdeGrid(n, v, s) for v in ((21, 41) if quick else (21, 41, 81))],
        "time": [PdeGrid(n, w, t) for t in ((1, 2) if quick else (1, 2, 4))],
    }
    rows = []
    for direction, grids in ladders.items():
        previous, change = None, None
        for grid in grids:
            started = time.perf_counter()
            values, _ = headline(PdeOracle(model, grid), model)
            wall = time.perf_counter() - started
            delta = None if previous is None else np.abs(values - previous)
            p = ("—" if change is None or delta is None or delta.max() == 0
                 else math.log2(change / delta.max()))
            rows.append([direction, grid_text(grid, model.n_steps), *values.tolist(),
                         *(delta.tolist() if delta is not None else ["—"] * 4), wall, p])
            previous, change = values, None if delta is None else float(delta.max())
    return table("q = 3/2, E2: refinement one direction at a time around the default grid "
                 f"{grid_text(DEFAULT, model.n_steps)} (change against the previous row; order from the "
                 "largest change)",
                 ["refined", "grid", "sigma_0", "mu_0", "S_0", "sup E sigma_t", "d sigma_0", "d mu_0",
                  "d S_0", "d sup sigma", "s", "observed order"], rows)


def leading_order(quick: bool) -> dict[str, Any]:
    rows = []
    for lam in (1e-2, 3e-3, 1e-3, 3e-4):
        model = MarketModel.from_scenario(E2.replace(**{"frictions.lambda": lam}))
        test = brownian_test_set(0, PATHS, model.n_steps, model.dt)
        grid = PdeGrid(101, 21, DEFAULT.substeps) if quick else DEFAULT
        pde = PdeOracle(model, grid)
        lo = LeadingOrderOracle(model)
        err = {k: v.value for k, v in oracle_errors(model, lo.paths(test), pde.paths(test), pde.s0).items()}
        rows.append([lam, grid_text(pde.solution.grid, model.n_steps), err["oracle/sigma_sup_rel_error"],
                     err["oracle/mu0_rel_error"], err["oracle/S0_abs_error"], err["oracle/rates_rel_mse"]])
    return table("E2 with smaller lambda: leading order against the PDE (1000 seeded paths)",
                 ["lambda", "PDE grid", "sigma sup rel", "mu_0 rel", "S_0 abs", "rates rel MSE"], rows)


def e2_reference(quick: bool) -> list[dict[str, Any]]:
    cached_solution.cache_clear()  # time the whole solve, not a solution reused from the study above
    started = time.perf_counter()
    result = oracle_result(E2)  # what `marketeq oracle` computes: the default grid, 3000 test paths
    wall = time.perf_counter() - started
    m = result.metrics
    out = [table("E2: `marketeq oracle` (PDE reference, default grid, 3000 test paths)",
                 ["wall time s", "sigma_0", "mu_0", "S_0", "terminal", "label"],
                 [[wall, m["sigma0"].value, m["mu0"].value, m["S0"].value, m["terminal"].value,
                   result.message]])]
    record = records_dir() / "compare_e2.json"
    per_seed = json.loads(record.read_text()).get("per_seed", {}) if record.exists() else {}
    if per_seed:  # a record from before per-seed metrics has none: nothing to compare
        rows = []
        for seed, methods in per_seed.items():
            for name, run in methods.items():
                if run["status"] == "completed" and not name.startswith("oracle"):
                    got = {k: run["metrics"][k][0] for k in ("S0", "mu0", "sigma0")}
                    rows.append([name, seed, got["sigma0"] / m["sigma0"].value - 1,
                                 got["mu0"] / m["mu0"].value - 1, got["S0"] - m["S0"].value])
        out.append(table("E2: the solver's recorded numbers (data/results/compare_e2.json) against the PDE",
                         ["method", "seed", "sigma_0 rel", "mu_0 rel", "S_0 abs"], rows))
    rows = []
    for q in (2.0, 1.5):
        scenario = E2.replace(**{"frictions.q": q, "run.test_paths": 1000 if quick else 3000})
        result = oracle_result(scenario, method="pde")
        iterations = 60 if quick else 200
        report = result_gap(result, iterations)
        kept = ", ".join(str(int(k)) for k in report.selected)
        rows.append([q, "`marketeq gap`: iteration kept on validation paths", report.train_paths,
                     report.total_gap, report.total_gap_se, z_score(report), kept, report.training])
        last = last_iterate_gap(result, iterations)
        rows.append([q, "the last iteration (the estimator before the selection)", last.train_paths,
                     last.total_gap, last.total_gap_se, z_score(last), str(iterations), last.training])
    out.append(table("E2: equilibrium gap at the PDE solution (both q on the PDE reference; 0 kept = the "
                     "reference's own rates)",
                     ["q", "estimator", "training paths", "total gap", "standard error", "gap / se",
                      "iteration kept per agent", "training"], rows))
    return out


def z_score(report: Any) -> float:
    """gap / standard error; 0 when the kept policy is the reference's own (both exactly 0)."""
    return report.total_gap / report.total_gap_se if report.total_gap_se > 0 else 0.0


def last_iterate_gap(result: Any, iterations: int) -> Any:
    """The gap as ``marketeq gap`` measured it before the selection: the last iteration, trained on as many
    fresh paths of the rebuilt market as the test set (seeded 'gap' stream), evaluated on the test paths."""
    model = MarketModel.from_scenario(result.scenario, "cpu", torch.float64)
    n = int(np.asarray(result.paths.W).shape[0])
    source = BrownianSource(stream_seed(result.scenario.run.seed, "gap"), model.n_steps, model.dt,
                            model.device, model.dtype)
    with torch.no_grad():
        train = rebuild_market(result, model)(source.draw(n)).numpy()
    return best_response_gap(model, train, result.paths, iterations, select=False,
                             seed=result.scenario.run.seed, training=f"{n} fresh paths, last iteration")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grids (a smoke test, minutes less)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    tables = [*quadratic(args.quick), power_refinement(args.quick), leading_order(args.quick),
              *e2_reference(args.quick)]
    wall = time.perf_counter() - started
    output = save_record("pde_convergence", "PDE reference: grid refinement, Riccati, leading order, E2",
                         {"wall_time_s": wall, "tables": tables}, seeds=[0], quick=args.quick)
    print(f"\nwrote {output} ({wall:.0f} s)")


if __name__ == "__main__":
    main()
