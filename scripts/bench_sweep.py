"""Benchmark: the lambda sweep on 1 and 2 local workers (and on Ray), with its predictions figure.

    python scripts/bench_sweep.py [--sweep scenarios/sweeps/lambda_quadratic.toml] [--workers 1 2]
                                  [--ray] [--quick] [-o results/bench_sweep]
                                  [--figure docs/predictions_lambda.png]

Runs the whole sweep from scratch once per worker count (each in its own directory, so nothing is reused),
prints the wall times, how far the solver's points are from the oracle at the same lambda, and, with --ray,
whether a Ray run on a local instance gives the same summary as the local backend. Exit code 1 when the
backends disagree or a trial failed. --quick: a small sweep (the oracle at 5 values of lambda, the solver at 2
with two short rounds) on 2 workers, its figure beside the trials instead of in docs/.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's marketeq, also in the worker processes

from benchlib import Transcript, save_record  # noqa: E402

from marketeq.files import write_bytes_atomically  # noqa: E402
from marketeq.sweeps import load_sweep, predictions_figure, read_summary, run_sweep  # noqa: E402

# --quick: the same market and parameter, fewer points and a short schedule ({base}: the E1 scenario's path).
QUICK_SWEEP = """name = "lambda_quadratic_quick"
description = "The lambda sweep cut short: a check of the sweep pipeline, not of the solver's accuracy."
base = "{base}"
seeds = [0]

[set]
"run.test_paths" = 300
"run.device" = "cpu"

[[group]]
methods = ["oracle"]
grid = {{ "frictions.lambda" = {{ start = 1e-4, stop = 1e-1, num = 5, spacing = "log" }} }}

[[group]]
methods = ["solver"]
grid = {{ "frictions.lambda" = [1e-2, 1e-1] }}

[group.set]
"solver.mu_mode" = "known"
"solver.rounds" = 2
"solver.agents_iterations" = [40]
"solver.market_iterations" = [40]
"""
QUANTITIES = ("sigma0", "mu0", "S0", "liquidity_premium", "price_discount")


def timed_run(sweep, directory: Path, backend: str, workers: int) -> tuple[float, dict]:  # noqa: ANN001
    shutil.rmtree(directory, ignore_errors=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    outcome = run_sweep(sweep, directory, backend=backend, workers=workers)
    wall = time.perf_counter() - started
    failed = ", ".join(f"#{r['trial']}: {r['message']}" for r in outcome.failed)
    # Trial time summed over trials / wall time: how many trials ran at once. On a machine that other jobs
    # already keep busy, 2 workers overlap trials but each runs slower, and the wall time barely moves.
    busy = sum(r["wall_time_s"] for r in outcome.rows) / wall
    print(f"{backend} backend, {workers} worker(s): {wall:.1f} s for {outcome.ran} trials (trial time / wall "
          f"time {busy:.2f}; load average {load:.1f} -> {os.getloadavg()[0]:.1f})"
          + (f"; FAILED {failed}" if failed else ""), flush=True)
    return wall, read_summary(directory)[0]


def solver_against_oracle(columns: dict) -> None:
    """Each solver point next to the oracle at the same parameter value."""
    x = next(k for k in columns if k.startswith("param/"))
    oracle = {columns[x][i]: i for i in np.flatnonzero(columns["method"] == "oracle")}
    print(f"\nsolver against oracle ({x.removeprefix('param/')}; relative error, the premium and discount "
          "relative to the oracle's own value)")
    print(f"  {'value':>10s} " + " ".join(f"{q:>26s}" for q in QUANTITIES))
    for i in np.flatnonzero(columns["method"] != "oracle"):
        j = next((oracle[v] for v in oracle if np.isclose(v, columns[x][i])), None)
        if j is None or columns["status"][i] != "completed":
            continue
        cells = []
        for q in QUANTITIES:
            s, o = columns[q][i], columns[q][j]
            cells.append(f"{s:9.5f} vs {o:9.5f} {abs(s - o) / abs(o):5.1%}")
        print(f"  {columns[x][i]:10.4g} " + " ".join(f"{c:>26s}" for c in cells))
    for i in np.flatnonzero(columns["method"] != "oracle"):
        print(f"  solver at {columns[x][i]:.4g}: {columns['wall_time_s'][i]:.1f} s, sup rel. error of "
              f"sigma_t {columns['oracle/sigma_sup_rel_error'][i]:.2%}, S0 abs. error "
              f"{columns['oracle/S0_abs_error'][i]:.2g}")


def identical(a: dict, b: dict) -> bool:
    differ = [k for k in a if k != "wall_time_s"
              and not np.array_equal(a[k], b.get(k), equal_nan=a[k].dtype.kind == "f")]
    print("Ray and local summaries: " + ("identical (every column but wall_time_s)" if not differ
                                           else f"DIFFER in {', '.join(differ)}"))
    return not differ


def main() -> int:
    with Transcript() as transcript:
        code, args = run()
    if args.record:
        workers = ", ".join(map(str, args.workers))
        title = f"Sweeps: the lambda sweep, {workers} worker(s)" + (", Ray" if args.ray else "")
        path = save_record("bench_sweep", title, {"output": transcript.text},
                           seeds=sorted({t.seed for t in load_sweep(args.sweep).trials}), quick=args.quick)
        print(f"recorded {path}")
    return code


def run() -> tuple[int, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default=None, help="default scenarios/sweeps/lambda_quadratic.toml")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="default 1 2 (--quick: 2)")
    parser.add_argument("--ray", action="store_true", help="also run on a local Ray instance (2 workers)")
    parser.add_argument("-o", "--output", default=str(ROOT / "results" / "bench_sweep"))
    parser.add_argument("--figure", default=None, help="default docs/predictions_lambda.png (--quick: in -o)")
    parser.add_argument("--quick", action="store_true", help="a small sweep on 2 workers (see above)")
    parser.add_argument("--record", action="store_true", help="write data/results/bench_sweep.json")
    args = parser.parse_args()
    output = Path(args.output)
    args.workers = args.workers or ([2] if args.quick else [1, 2])
    args.figure = args.figure or str(output / "predictions_lambda.png" if args.quick
                                     else ROOT / "docs" / "predictions_lambda.png")
    if args.sweep is None and args.quick:
        base = (ROOT / "scenarios" / "paper_e1_quadratic_10_agents.toml").as_posix()
        args.sweep = str(write_bytes_atomically(output / "lambda_quadratic_quick.toml",
                                                QUICK_SWEEP.format(base=base).encode("utf-8")))
    args.sweep = args.sweep or str(ROOT / "scenarios" / "sweeps" / "lambda_quadratic.toml")
    sweep = load_sweep(args.sweep)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"python {platform.python_version()}; sweep {sweep.name}: {len(sweep.trials)} trials", flush=True)
    walls, summaries = {}, {}
    for workers in args.workers:
        walls[workers], summaries[workers] = timed_run(sweep, output / f"local_{workers}", "local", workers)
    if len(walls) > 1:
        base = min(walls)
        print("speed-up over 1 worker: " + ", ".join(f"{w} workers {walls[base] / t:.2f}x"
                                                     for w, t in walls.items() if w != base))
    ok = all((s["status"] == "completed").all() for s in summaries.values())
    if args.ray:
        _, ray_summary = timed_run(sweep, output / "ray_2", "ray", 2)
        ok &= identical(summaries[max(summaries)], ray_summary)
    first = min(summaries)
    solver_against_oracle(summaries[first])
    figure = predictions_figure(output / f"local_{first}", args.figure)
    print(f"\nwrote {figure}")
    return (0 if ok else 1), args


if __name__ == "__main__":
    sys.exit(main())
