"""The default solver on several assets with quadratic costs, against the exact answers.

    python scripts/assets_solver_check.py [--seeds 0 1 2] [--quick] [--record]

1. ``scenarios/assets_2_separable.toml`` (A, Lambda and every Xi_n diagonal) with default settings against two
   one-asset Riccati oracles (each asset as a one-asset scenario of its own): sup over t of each diagonal
   volatility's relative error, the off-diagonal entries, mu_0 and S_0 per asset.
2. ``scenarios/assets_3_quadratic.toml`` with default settings against the matrix-Riccati oracle: every entry
   of Sigma_t (sup over t, relative to the largest entry at t), mu_0, S_0, clearing per asset, wall time.
3. The grid equilibria of assets_3_quadratic alone, K = 100 to 1600, against the oracle: first order in the
   step, and the extrapolation 2 x fine - coarse.

The seed changes only the test paths (the solver is deterministic: no training paths), so Sigma_t, mu_0 and
S_0 are the same for every seed and the path metrics (clearing, terminal) move within their sampling noise.
With --record, writes data/results/assets_solver.json (rendered into docs/results.md by
scripts/results_md.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import Transcript, fmt, print_table, save_record  # noqa: E402

import marketeq  # noqa: E402
from marketeq.oracles.assets_market import AssetsMarket, cost_matrix  # noqa: E402
from marketeq.oracles.riccati_assets import RiccatiAssets  # noqa: E402
from marketeq.scenario.assets import asset_arrays  # noqa: E402
from marketeq.scenario_files import load_scenario  # noqa: E402
from marketeq.solvers.quadratic_assets import AssetsProblem, equilibrium_sweep  # noqa: E402

SCENARIOS = ROOT / "scenarios"
TABLES: list[dict[str, Any]] = []


def table(caption: str, columns: list[str], rows: list[list[Any]]) -> None:
    print_table(TABLES, caption, columns, rows)


def clearing_per_asset(result: marketeq.RunResult) -> np.ndarray:
    """(d,) mean over steps and paths of ((1/N) sum_n phidot^n_i)^2."""
    return (result.paths.phidot[:, :-1].mean(2) ** 2).mean((0, 1))


def separable(seeds: list[int], paths: int) -> dict[int, dict[str, float]]:
    scenario = load_scenario(SCENARIOS / "assets_2_separable.toml").replace(**{"run.test_paths": paths})
    rows, per_seed = [], {}
    for seed in seeds:
        started = time.perf_counter()
        result = marketeq.solve(scenario, seed=seed)
        wall = time.perf_counter() - started
        p, out = result.paths, {}
        for i in range(2):
            alone = marketeq.oracle_result(scenario.one_asset(i).replace(**{"run.seed": seed}))
            exact = alone.paths.sigma.mean(0)[:-1]
            out[f"sigma_{i + 1}"] = float(np.abs(p.sigma[0, :-1, i, i] / exact - 1.0).max())
            out[f"mu0_{i + 1}"] = abs(float(p.mu[:, 0, i].mean()) / alone.metrics["mu0"].value - 1.0)
            out[f"S0_{i + 1}"] = abs(float(p.S[:, 0, i].mean()) / alone.metrics["S0"].value - 1.0)
        out["off_diagonal"] = float(np.abs(p.sigma[0, :, 0, 1]).max() + np.abs(p.sigma[0, :, 1, 0]).max())
        out["clearing"], out["wall_s"] = result.metrics["clearing"].value, wall
        per_seed[seed] = out
        rows.append([seed, *(fmt(out[k]) for k in ("sigma_1", "sigma_2", "off_diagonal", "mu0_1", "mu0_2",
                                                     "S0_1", "S0_2", "clearing")), f"{wall:.1f}",
                     result.message.split(" (")[0]])
    table("assets_2_separable, default settings, against two one-asset Riccati oracles (relative errors; "
          "must show: sigma <= 0.5 %, mu_0 <= 1 %)",
          ["seed", "sigma_11", "sigma_22", "max abs off-diagonal", "mu_0 asset 1", "mu_0 asset 2",
           "S_0 asset 1", "S_0 asset 2", "clearing", "wall s", "verdict"], rows)
    return per_seed


def three_assets(seeds: list[int], paths: int) -> dict[int, dict[str, float]]:
    scenario = load_scenario(SCENARIOS / "assets_3_quadratic.toml").replace(**{"run.test_paths": paths})
    rows, per_seed = [], {}
    for seed in seeds:
        started = time.perf_counter()
        result = marketeq.solve(scenario, seed=seed)
        wall = time.perf_counter() - started
        m = result.metrics
        clearing = clearing_per_asset(result)
        out = {"sigma": m["oracle/sigma_sup_rel_error"].value, "mu0": m["oracle/mu0_rel_error"].value,
               "S0": m["oracle/S0_rel_error"].value, "rates": m["oracle/rates_rel_mse"].value,
               "clearing_max": float(clearing.max()), "terminal": m["terminal"].value,
               "grids": m["convergence/grids"].value,
               "time_step_error": m["convergence/time_step_error"].value,
               "converged": m["convergence/converged"].value, "wall_s": wall}
        per_seed[seed] = out
        rows.append([seed, fmt(out["sigma"]), fmt(out["mu0"]), fmt(out["S0"]), fmt(out["rates"]),
                     " / ".join(f"{c:.1e}" for c in clearing), fmt(out["terminal"]),
                     fmt(out["time_step_error"]),
                     f"{wall:.1f}", result.message.split(" (")[0]])
    table("assets_3_quadratic, default settings, against the matrix-Riccati oracle (must show: every entry "
          "of Sigma_t within 1 % of the largest, mu_0 within 2 %, clearing <= 1e-5 per asset, within 15 "
          "minutes)",
          ["seed", "Sigma_t (sup)", "mu_0", "S_0", "rates rel. MSE", "clearing per asset", "terminal",
           "time-step error", "wall s", "verdict"], rows)
    return per_seed


def grids(levels: int) -> None:
    arrays = asset_arrays(load_scenario(SCENARIOS / "assets_3_quadratic.toml"))
    args = (arrays.gamma, arrays.xi, arrays.A, arrays.supply, arrays.beta, arrays.horizon)
    base = arrays.steps
    oracle = RiccatiAssets(arrays.gamma, arrays.xi, arrays.A, arrays.lam, arrays.supply, arrays.beta,
                           arrays.horizon, base)
    exact = oracle.sigma[:-1]
    scale = np.abs(exact).max(axis=(1, 2))

    def error(sigma: np.ndarray) -> float:
        return float((np.abs(sigma - exact).max(axis=(1, 2)) / scale).max())

    rows, previous, last = [], None, None
    for level in range(levels):
        steps = base * 2**level
        problem = AssetsProblem(AssetsMarket.check(*args, steps), cost_matrix(arrays.lam, len(arrays.A)))
        started = time.perf_counter()
        sigma = equilibrium_sweep(problem).sigma[:: 2**level][:-1]
        seconds = time.perf_counter() - started
        grid = error(sigma)
        ratio = "" if previous is None else f"{previous / grid:.2f}"
        extrapolated = "" if last is None else fmt(error(2.0 * sigma - last))
        rows.append([steps, fmt(grid), ratio, extrapolated, f"{seconds:.2f}"])
        previous, last = grid, sigma
    table("assets_3_quadratic: each grid's exact equilibrium against the oracle on the scenario's 100 points "
          "(sup over t of the largest entry error / the largest entry)",
          ["K", "Sigma_t error", "ratio to the previous", "extrapolated 2 x this - previous", "sweep s"],
          rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="seed 0, 200 test paths, grids up to 400")
    parser.add_argument("--record", action="store_true", help="write data/results/assets_solver.json")
    args = parser.parse_args()
    seeds = [0] if args.quick else args.seeds
    paths = 200 if args.quick else 1000
    with Transcript():
        two = separable(seeds, paths)
        three = three_assets(seeds, paths)
        grids(3 if args.quick else 5)
    if args.record:
        notes = ["The seed changes only the test paths: the solver draws no training paths, so Sigma_t, "
                 "mu_0 and S_0 are identical across seeds; clearing and terminal are means over the test "
                 "paths.",
                 f"{paths} test paths per run; wall time of marketeq.solve including the test-set roll-out "
                 "and the oracle's."]
        path = save_record("assets_solver", "Several assets: the default solver with quadratic costs",
                           {"tables": TABLES, "notes": notes}, seeds=seeds,
                           per_seed={s: {"separable": two[s], "assets_3": three[s]} for s in seeds},
                           quick=args.quick)
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
