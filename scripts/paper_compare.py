"""The paper's comparison: every method on E1, E2 and E3, on the same seeded test paths, over seeds.

    python scripts/paper_compare.py [e1 e2 e3] [--seeds 0 1 2] [--methods rlink,joint,...]
                                    [--gap-iterations 200] [--quick] [-o results/]

For each scenario and seed runs ``marketeq.compare`` (reinforcement link with mu learned and known, joint,
deep FBSDE, and the oracle or the reference), writes ``results/compare_<e>_seed<s>.h5`` with its PNG plots,
prints the per-seed table and mean ± sd over seeds, and records them with the raw per-seed metrics in
data/results/compare_<e>.json (rendered by scripts/results_md.py). Verdicts against the published method's
numbers (data/published/) and the baselines hold only when they hold on every seed (scripts/seedstats.py); the
terminal error is held to the exact equilibrium's own error on the same grid where the published number lies
below it. ``--quick``: benchlib.quick_changes (a short budget, 300 test paths), a short gap, the
methods rlink and oracle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import ROOT, published, quick_changes, save_record
from seedstats import Target, spread, target_with_floor, versus_method, versus_target

import marketeq
from marketeq.compare import (
    COLUMNS,
    DEFAULT_METHODS,
    METHODS,
    compare,
    parse_methods,
    plot_comparison,
    table_rows,
)
from marketeq.hdf5 import write_comparison

# The scenario file and the published method's clearing and terminal errors, from data/published/.
SCENARIOS = {
    key: (record["scenario"], {name: record[name] for name in ("clearing", "terminal")})
    for key, record in ((key, published(key)) for key in ("e1", "e2", "e3"))
}


QUICK_METHODS = "rlink,oracle"
QUICK_GAP_ITERATIONS = 20
PerSeed = dict[int, dict[str, marketeq.RunResult]]


def values(runs: PerSeed, method: str, key: str, stderr: bool = False) -> list[float]:
    """One metric of one method, one value (or standard error over paths) per seed; nan where missing."""
    out = []
    for results in runs.values():
        metric = results[method].metrics.get(key) if method in results else None
        out.append(float("nan") if metric is None else float(metric.stderr if stderr else metric.value))
    return out


def floors(runs: PerSeed) -> list[float] | None:
    """The exact equilibrium's terminal error per seed on the same grid, where an exact reference ran."""
    oracle = [results.get("oracle") for results in runs.values()]
    if not all(
        r is not None and r.status == "completed" and r.oracle_name not in (None, "leading-order")
        for r in oracle
    ):
        return None
    return [r.metrics["terminal"].value for r in oracle]  # type: ignore[union-attr]


def checks(runs: PerSeed, published: dict[str, float]) -> list[str]:
    """Verdicts over seeds in words: the reinforcement link against the published numbers and baselines."""
    if not any("rlink" in r and r["rlink"].metrics for r in runs.values()):
        return ["the reinforcement-link run produced no metrics on any seed"]
    notes = []
    for key, value in published.items():
        ours = values(runs, "rlink", key)
        target = (
            target_with_floor(value, floors(runs))
            if key == "terminal"
            else Target(value, f"published {value:.3g}")
        )
        notes.append(
            f"rlink {key} {spread(ours).text()} (mean ± sd over seeds; per seed "
            f"{', '.join(f'{v:.3g}' for v in ours)}): {versus_target(ours, target)}"
        )
    for seed, results in runs.items():
        if "rlink" in results and results["rlink"].paths is not None:
            notes.append(f"seed {seed}: {sigma_shape(results['rlink'])}")
    if any("gap/ratio" in r["rlink"].metrics for r in runs.values() if "rlink" in r):
        share = spread([100 * v for v in values(runs, "rlink", "gap/ratio")]).text()
        notes.append(
            f"rlink equilibrium gap: {spread(values(runs, 'rlink', 'gap/total')).text()}, {share} % of the "
            "agents' total gain over not trading (mean ± sd over seeds)"
        )
    for base in ("joint", "fbsde"):
        ran = [r[base] for r in runs.values() if base in r]
        failed = [
            f"seed {seed}: {r[base].message or r[base].status}"
            for seed, r in runs.items()
            if base in r and not r[base].metrics
        ]
        if not ran:
            continue
        notes += [f"{base} {text}" for text in failed]  # a failed run's message says how it ended
        for key in ("clearing", "terminal", "oracle/sigma_sup_rel_error", "gap/total"):
            ours, theirs = values(runs, "rlink", key), values(runs, base, key)
            if any(np.isfinite(ours)) and any(np.isfinite(theirs)):
                verdict = versus_method(
                    ours, theirs, "rlink", base, values(runs, "rlink", key, True), values(runs, base, key, True)
                )
                notes.append(
                    f"{key}: rlink {spread(np.abs(ours)).text()} vs {base} {spread(np.abs(theirs)).text()}"
                    f" ({verdict})"
                )
    return notes


def sigma_shape(run: marketeq.RunResult) -> str:
    """sigma_t of one run: its ends, whether it stays above alpha before T, whether it falls throughout."""
    sigma = run.paths.sigma.mean(0)
    alpha = run.scenario.market.alpha
    t = run.paths.t
    peak = int(np.argmax(sigma[:-1]))
    monotone = bool(np.all(np.diff(sigma) <= 0))
    shape = (
        "decreasing throughout"
        if monotone
        else (
            f"not monotone: rises by {sigma[peak] - sigma[0]:.4f} to its peak at t = {t[peak]:.3g}, then "
            f"{'decreases' if np.all(np.diff(sigma[peak:]) <= 0) else 'moves both ways'} to T"
        )
    )
    return (
        f"rlink sigma_t: {sigma[0]:.4f} at t = 0, {sigma[-2]:.4f} one step before T, {sigma[-1]:.4f} at T "
        f"(alpha = {alpha}); above alpha before T: {bool(np.all(sigma[:-1] > alpha))}; {shape}"
    )


def raw_metrics(runs: PerSeed) -> dict[int, dict[str, Any]]:
    """Every method's status, wall time and metrics (value, standard error over paths), per seed."""
    return {
        seed: {
            name: {
                "status": r.status,
                "wall_time_s": r.wall_time_s,
                "message": r.message,
                "metrics": {k: [m.value, m.stderr] for k, m in r.metrics.items()},
            }
            for name, r in results.items()
        }
        for seed, results in runs.items()
    }


def summary_rows(runs: PerSeed) -> list[list[str]]:
    """Per method: mean ± sd over the seeds it completed, for every column."""
    rows = []
    methods = list(dict.fromkeys(name for results in runs.values() for name in results))
    for name in methods:
        done = sum(1 for r in runs.values() if name in r and r[name].status == "completed")
        cells = [spread(values(runs, name, key)).text() for key, _ in COLUMNS]
        walls = [r[name].wall_time_s for r in runs.values() if name in r]
        rows.append([name, "mean ± sd", f"{done}/{len(runs)} completed", *cells, f"{spread(walls).text()} s"])
    return rows


def run_scenario(key: str, args: argparse.Namespace) -> tuple[PerSeed, marketeq.Scenario]:
    """Every method on one scenario, once per seed; writes each seed's results file and plots."""
    name, _ = SCENARIOS[key]
    scenario = marketeq.load_scenario(ROOT / "scenarios" / name)
    if args.quick:
        scenario = scenario.replace(**quick_changes(scenario))
    runs: PerSeed = {}
    for seed in args.seeds:
        print(
            f"\n=== {key}: {scenario.name}, seed {seed} ({torch.get_num_threads()} torch threads)", flush=True
        )
        announce = lambda method: print(f"  running {method}", flush=True) or ()  # noqa: E731
        runs[seed] = compare(
            scenario,
            args.methods,
            callbacks_for=announce,
            device=args.device,
            seed=seed,
            gap_iterations=args.gap_iterations,
        )
        out = Path(args.output) / f"compare_{key}_seed{seed}.h5"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_comparison(runs[seed], out)
        plot_comparison(runs[seed], out.with_suffix(""))
    return runs, scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gap-iterations", type=int, default=None, help="default 200 (--quick: 20)")
    parser.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated, from {', '.join(METHODS)} (default: {','.join(DEFAULT_METHODS)}; "
        f"--quick: {QUICK_METHODS})",
    )
    parser.add_argument("--quick", action="store_true", help="reduced settings: a check of the pipeline")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-o", "--output", default=str(ROOT / "results"))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.gap_iterations is None:
        args.gap_iterations = QUICK_GAP_ITERATIONS if args.quick else 200
    try:
        args.methods = parse_methods(
            args.methods or (QUICK_METHODS if args.quick else ",".join(DEFAULT_METHODS))
        )
    except marketeq.ScenarioError as exc:
        parser.error(str(exc))
    for key in args.which:
        runs, scenario = run_scenario(key, args)
        columns = ["method", "seed", "status", *(h for _, h in COLUMNS), "wall time"]
        rows = [
            [row[0], str(seed), *row[1:]] for seed, results in runs.items() for row in table_rows(results)
        ]
        rows.sort(key=lambda row: list(runs[int(row[1])]).index(row[0]))  # methods together, seeds in order
        summary = summary_rows(runs)
        print(" | ".join(columns))
        for row in rows + summary:
            print(" | ".join(row))
        _, numbers = SCENARIOS[key]
        notes = checks(runs, numbers)
        for note in notes:
            print("  " + note)
        if not args.no_record:
            seeds = ", ".join(map(str, args.seeds))
            save_record(
                f"compare_{key}",
                f"{key.upper()}: {scenario.description}",
                {
                    "tables": [
                        {
                            "caption": f"{scenario.name}, seeds {seeds}, "
                            f"{scenario.run.test_paths} test paths; "
                            "value ± standard error over paths, per seed",
                            "columns": columns,
                            "rows": rows,
                        },
                        {
                            "caption": "mean ± sd over seeds (completed seeds only)",
                            "columns": columns,
                            "rows": summary,
                        },
                    ],
                    "notes": [
                        f"published method: clearing {numbers['clearing']:.3g}, terminal "
                        f"{numbers['terminal']:.3g} (data/published/{key}.toml)",
                        *notes,
                        f"results and plots: results/compare_{key}_seed<s>.h5, "
                        f"results/compare_{key}_seed<s>_{{sigma,mu,phidot,phi}}.png",
                    ],
                },
                seeds=list(args.seeds),
                per_seed=raw_metrics(runs),
                quick=args.quick,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
