"""E2: the solver against the PDE reference and the leading-order approximation, over seeds.

    python scripts/e2_table.py [--seeds 0 1 2] [--quick] [-o results/e2_table]

For each seed, solves scenarios/paper_e2_power_2_agents.toml with its own settings (the current default
solver; ``run.seed`` = the seed) and evaluates the PDE reference (default grid, the K-step game's rates) and
the leading-order approximation on the run's seeded test paths. Per seed and method: sigma_0, mu_0, S_0 and
the distance to the PDE (sup over t of the relative error of the mean sigma_t, relative error of mu_0,
absolute error of S_0, relative mean-square error of the rates along the same paths); then mean ± sd over
seeds and the solver's verdict against issue 15's targets (within 0.5 % of the PDE in sigma, 1 % in mu_0 and
1e-3 in S_0, on every seed). Writes each run to ``-o`` and the record data/results/e2_table.json (rendered
by scripts/results_md.py). ``--quick``: benchlib.quick_changes (a short budget): the pipeline, not the
accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import ROOT, quick_changes, save_record
from seedstats import spread

import marketeq
from marketeq.metrics import oracle_errors
from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, paths_to_torch
from marketeq.oracles import LeadingOrderOracle, PdeOracle
from marketeq.oracles.pde import cached_solution

SCENARIO = ROOT / "scenarios" / "paper_e2_power_2_agents.toml"
ERRORS = {"sigma sup rel": "oracle/sigma_sup_rel_error", "mu_0 rel": "oracle/mu0_rel_error",
          "S_0 abs": "oracle/S0_abs_error", "rates rel MSE": "oracle/rates_rel_mse"}
TARGETS = {"sigma sup rel": 5e-3, "mu_0 rel": 1e-2, "S_0 abs": 1e-3}  # issue 15: the solver against the PDE
METHODS = ("solver", "PDE", "leading order")


def headline(paths: Paths, s0: float) -> dict[str, float]:
    return {"sigma_0": float(paths.sigma[:, 0].double().mean()),
            "mu_0": float(paths.mu[:, 0].double().mean()), "S_0": s0}


def one_seed(scenario: marketeq.Scenario, seed: int, output: Path | None) -> dict[str, Any]:
    """The three methods' headline numbers and distances to the PDE on the seed's test paths."""
    started = time.perf_counter()
    result = marketeq.solve(scenario, device="cpu", seed=seed)
    solve_s = time.perf_counter() - started
    if output is not None:
        marketeq.write_result(result, output / f"e2_seed{seed}.h5")
    model = MarketModel.from_scenario(result.scenario, "cpu", torch.float64)
    test = brownian_test_set(seed, result.scenario.run.test_paths, model.n_steps, model.dt)
    cached_solution.cache_clear()  # time the whole solve, not the one the run kept for its own metrics
    started = time.perf_counter()
    pde = PdeOracle(model)
    reference = pde.paths(test)
    pde_s = time.perf_counter() - started
    leading = LeadingOrderOracle(model)
    runs: dict[str, tuple[Paths | None, float]] = {
        "solver": (None if result.paths is None else paths_to_torch(result.paths), float("nan")),
        "PDE": (reference, pde.s0),
        "leading order": (leading.paths(test), leading.s0),
    }
    if result.metrics.get("S0") is not None:
        runs["solver"] = (runs["solver"][0], float(result.metrics["S0"].value))
    out: dict[str, Any] = {"status": result.status, "solve_s": solve_s, "pde_s": pde_s, "label": pde.label}
    for name, (paths, s0) in runs.items():
        if paths is None:
            out[name] = None
            continue
        errors = oracle_errors(model, paths, reference, pde.s0)
        out[name] = {**headline(paths, s0), **{k: errors[key].value for k, key in ERRORS.items()}}
    return out


def rows_for(per_seed: dict[int, dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for seed, got in per_seed.items():
        for name in METHODS:
            numbers = got[name]
            if numbers is None:
                rows.append([seed, name, got["status"], *["—"] * 7])
                continue
            errs = ["—"] * 4 if name == "PDE" else [f"{numbers[k]:.3g}" for k in ERRORS]
            rows.append([seed, name, got["status"] if name == "solver" else "reference",
                         *(f"{numbers[k]:.6g}" for k in ("sigma_0", "mu_0", "S_0")), *errs])
    return rows


def summary(per_seed: dict[int, dict[str, Any]]) -> tuple[list[list[Any]], list[str]]:
    rows, notes = [], []
    for name in ("solver", "leading order"):
        ran = [got[name] for got in per_seed.values() if got[name] is not None]
        rows.append([name, len(ran), *(spread([r[k] for r in ran]).text() if ran else "—" for k in ERRORS)])
    solver = {seed: got["solver"] for seed, got in per_seed.items()}
    for key, limit in TARGETS.items():
        values = [None if v is None else v[key] for v in solver.values()]
        held = all(v is not None and v <= limit for v in values)
        shown = ", ".join("none" if v is None else f"{v:.3g}" for v in values)
        notes.append(f"solver {key} against the PDE per seed {shown}: target <= {limit:g} "
                     f"{'held on every seed' if held else 'NOT held on every seed'}")
    times = [got["solve_s"] for got in per_seed.values()]
    pde = ", ".join(f"{got['pde_s']:.1f}" for got in per_seed.values())
    notes.append(f"solver wall time per seed {', '.join(f'{t:.0f}' for t in times)} s; PDE reference {pde} s "
                 f"({next(iter(per_seed.values()))['label']})")
    return rows, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="benchlib.quick_changes: the pipeline only")
    parser.add_argument("-o", "--output", type=Path, default=None, help="directory for the runs' .h5 files")
    args = parser.parse_args()
    scenario = marketeq.load_scenario(SCENARIO)
    if args.quick:
        scenario = scenario.replace(**quick_changes(scenario))
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed] = one_seed(scenario, seed, args.output)
        print(f"seed {seed}: {per_seed[seed]['status']} in {per_seed[seed]['solve_s']:.0f} s", flush=True)
    header = ["seed", "method", "status", "sigma_0", "mu_0", "S_0", *(f"{k} vs PDE" for k in ERRORS)]
    rows = rows_for(per_seed)
    means, notes = summary(per_seed)
    tables = [{"title": f"E2 ({scenario.run.test_paths} test paths per seed): solver, PDE reference and "
                        "leading order on the same seeded paths", "header": header, "rows": rows},
              {"title": "Distance to the PDE reference, mean ± sd over seeds",
               "header": ["method", "seeds", *ERRORS], "rows": means}]
    for t in tables:
        print(f"\n{t['title']}\n" + "\n".join(" | ".join(map(str, r)) for r in [t["header"], *t["rows"]]))
    print("\n" + "\n".join(notes))
    written = save_record("e2_table", "E2: the solver against the PDE reference and the leading order",
                          {"tables": tables, "notes": notes}, seeds=args.seeds,
                          per_seed=per_seed,
                          quick=args.quick)
    print(f"wrote {written}")
    return 0 if np.isfinite([got["solve_s"] for got in per_seed.values()]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
