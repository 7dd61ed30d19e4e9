"""The paper's comparison: every method on E1, E2 and E3, on the same seeded test paths.

    python scripts/paper_compare.py [e1 e2 e3] [--methods rlink,joint,...] [--gap-iterations 200] [-o results/]

For each scenario runs ``marketeq.compare`` (reinforcement link with mu learned and known, joint training, deep
FBSDE, and the oracle or the leading-order reference), writes ``results/compare_<e>.h5`` with its PNG plots,
prints the table and records it in docs/results/compare_<e>.json (rendered by scripts/results_md.py). Also
prints, per scenario, the published method's numbers (docs/model.md section 5) and whether the
reinforcement-link rows beat them and the baselines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from benchlib import ROOT, published, save_record

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
SCENARIOS = {key: (record["scenario"], {name: record[name] for name in ("clearing", "terminal")})
             for key, record in ((key, published(key)) for key in ("e1", "e2", "e3"))}


def checks(results: dict[str, marketeq.RunResult], published: dict[str, float]) -> list[str]:
    """Plain-language verdicts: the reinforcement link against the published numbers and the baselines."""
    notes = []
    rgan = results.get("rlink")
    if rgan is None or not rgan.metrics:
        return ["the reinforcement-link run produced no metrics"]
    m = rgan.metrics
    for key, value in published.items():
        ours = m[key].value
        verdict = "better" if ours < value else "WORSE"
        notes.append(f"rlink {key} {ours:.3g} vs published {value:.3g}: {verdict}")
    sigma = rgan.paths.sigma.mean(0)
    alpha = rgan.scenario.market.alpha
    t = rgan.paths.t
    peak = int(np.argmax(sigma[:-1]))
    monotone = bool(np.all(np.diff(sigma) <= 0))
    shape = "decreasing throughout" if monotone else (
        f"not monotone: rises by {sigma[peak] - sigma[0]:.4f} to its peak at t = {t[peak]:.3g}, then "
        f"{'decreases' if np.all(np.diff(sigma[peak:]) <= 0) else 'moves both ways'} to T")
    notes.append(f"rlink sigma_t: {sigma[0]:.4f} at t = 0, {sigma[-2]:.4f} one step before T, "
                 f"{sigma[-1]:.4f} at T (alpha = {alpha}); above alpha before T: "
                 f"{bool(np.all(sigma[:-1] > alpha))}; {shape}")
    if "gap/ratio" in m:
        notes.append(f"rlink equilibrium gap: {m['gap/total'].value:.3g} ± {m['gap/total'].stderr:.2g}, "
                     f"{m['gap/ratio'].value:.2%} of the agents' total gain over not trading")
    for base in ("joint", "fbsde"):
        other = results.get(base)
        if other is None or not other.metrics:
            # a failed run's message already says how it ended ("diverged at iteration i: ...")
            notes.append(f"{base}: {(other.message or other.status) if other else 'not run'}")
            continue
        for key in ("clearing", "terminal", "oracle/sigma_sup_rel_error", "gap/total"):
            if key in m and key in other.metrics:
                notes.append(_versus(key, m[key], base, other.metrics[key]))
    return notes


def _versus(key: str, ours: marketeq.Metric, base: str, theirs: marketeq.Metric) -> str:
    """Which of two errors is smaller; two values within two standard errors of 0 are both zero."""
    a, b = abs(ours.value), abs(theirs.value)
    if a <= 2 * ours.stderr and b <= 2 * theirs.stderr:
        verdict = "both within two standard errors of 0"
    else:
        verdict = "rlink better" if a < b else "rlink NOT better"
    return f"{key}: rlink {a:.3g} vs {base} {b:.3g} ({verdict})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--gap-iterations", type=int, default=200)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-o", "--output", default=str(ROOT / "results"))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    try:
        args.methods = parse_methods(args.methods)
    except marketeq.ScenarioError as exc:
        parser.error(str(exc))
    for key in args.which:
        name, published = SCENARIOS[key]
        scenario = marketeq.load_scenario(ROOT / "scenarios" / name)
        print(f"\n=== {key}: {scenario.name} ({torch.get_num_threads()} torch threads)", flush=True)
        announce = lambda method: print(f"  running {method}", flush=True) or ()  # noqa: E731
        results = compare(scenario, args.methods, callbacks_for=announce, device=args.device,
                          gap_iterations=args.gap_iterations)
        out = Path(args.output) / f"compare_{key}.h5"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_comparison(results, out)
        plot_comparison(results, out.with_suffix(""))
        columns = ["method", "status", *(h for _, h in COLUMNS), "wall time"]
        rows = table_rows(results)
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join(row))
        notes = checks(results, published)
        for note in notes:
            print("  " + note)
        if not args.no_record:
            caption = (f"{scenario.name}, seed {scenario.run.seed}, {scenario.run.test_paths} test paths; "
                       "value ± standard error over paths")
            save_record(f"compare_{key}", f"{key.upper()}: {scenario.description}", {
                "tables": [{"caption": caption, "columns": columns, "rows": rows}],
                "notes": [f"published method: clearing {published['clearing']:.3g}, terminal "
                          f"{published['terminal']:.3g}", *notes,
                          f"plots: results/compare_{key}_{{sigma,mu,phidot,phi}}.png"],
            })
    return 0


if __name__ == "__main__":
    sys.exit(main())
