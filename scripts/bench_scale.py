"""Cost against the number of agents N: the Riccati oracle, and solver runs with the default settings.

Markets: the quickstart's market with the default solver settings (the quickstart has no [solver] table)
and N agents from one population (gamma uniform on [1, 3], xi normal with sd 10 and centred, seed N). For
every N, in a fresh process each (so peak memory is that of one job):

- oracle: the Riccati ODE (time, right-hand-side evaluations; ``--methods`` compares integrators), and its
  roll-out on the run's test set (time); peak RSS of the process;
- solver (sizes in ``--solver-sizes``): ``python -m marketeq run`` with wall time, peak RSS (VmHWM polled
  from /proc) and the errors against the oracle. A run still going after ``--max-minutes`` is sent SIGTERM
  and recorded as not finished, with the seconds its partial result took to reach the disk and the process
  to end (after adding the oracle comparison).

Writes data/results/bench_scale.json and the log-log figure docs/bench_scale.png, fits the exponent of
solver wall time against N over the finished runs with N >= 30, and says which of the targets (issue 16's
must-shows, :data:`TARGETS`) the record meets.

    python scripts/bench_scale.py --sizes 10 30 100 300 1000 --solver-sizes 10 30 100 300 1000

--quick: the oracle at N = 10, 30, 100 (LSODA), the solver at N = 10 with at most 3 minutes; its figure goes
to results/bench_scale_quick.png, not docs/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import ROOT, Transcript, save_record

ORACLE_CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from marketeq import load_scenario
from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.oracles import RiccatiOracle
scenario, methods = load_scenario(sys.argv[1]), sys.argv[2].split(",")
model = MarketModel.from_scenario(scenario, "cpu", getattr(torch, scenario.run.dtype))
out = {"ode": {}}
for method in methods:
    started = time.perf_counter()
    oracle = RiccatiOracle(model, method=method)
    out["ode"][method] = {"s": time.perf_counter() - started, "rhs": oracle.n_rhs, "s0": oracle.s0}
test = brownian_test_set(scenario.run.seed, scenario.run.test_paths, model.n_steps, model.dt, "cpu",
                         model.dtype)
started = time.perf_counter()
oracle.paths(test)
out["paths_s"] = time.perf_counter() - started
out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


# N -> the solver run's limits: sigma sup and mu_0 relative errors, clearing, wall seconds, peak RSS bytes
# (GB = 1e9 bytes)
TARGETS = {100: (0.01, 0.02, 1e-5, 600.0, 4e9), 1000: (0.02, None, None, 3600.0, 8e9)}
ORACLE_TARGETS = {100: (1.0, None), 1000: (10.0, 2e9)}  # N -> (ODE seconds, peak RSS bytes)
EXPONENT_AIM = 1.5


def verdicts(rows: list[dict], slope: float | None) -> list[str]:
    """One line per target: the measured values against the limits, met or not."""
    out = []
    for r in rows:
        n, o, s = r["n"], r.get("oracle", {}), r.get("solver")
        if n in ORACLE_TARGETS and o.get("ode"):
            limit_s, limit_rss = ORACLE_TARGETS[n]
            fastest = min(v["s"] for v in o["ode"].values())
            ok = fastest <= limit_s and (limit_rss is None or o.get("peak_rss", math.inf) <= limit_rss)
            rss = ("" if limit_rss is None else
                   f", peak {o['peak_rss'] / 1e9:.2f} GB (limit {limit_rss / 1e9:g})")
            out.append(f"Target, oracle at N = {n}: {fastest:.3g} s (limit {limit_s:g}){rss}: "
                       f"{'met' if ok else 'NOT met'}.")
        if n in TARGETS and s:
            sig, mu0, clear, wall, rss = TARGETS[n]
            m = s.get("metrics", {})
            checks = [("finished", s["finished"], "")]
            for name, key, limit in (("sigma", "oracle/sigma_sup_rel_error", sig),
                                     ("mu_0", "oracle/mu0_rel_error", mu0), ("clearing", "clearing", clear)):
                if limit is not None:
                    value = m.get(key, math.nan)
                    checks.append((name, bool(value <= limit), f"{name} {value:.2g} (limit {limit:g})"))
            checks.append(("wall", s["wall_s"] <= wall, f"{s['wall_s']:.0f} s (limit {wall:g})"))
            checks.append(("rss", s["peak_rss"] <= rss,
                           f"peak {s['peak_rss'] / 1e9:.2f} GB (limit {rss / 1e9:g})"))
            text = ", ".join(t for _, _, t in checks if t)
            met = all(ok for _, ok, _ in checks)
            out.append(f"Target, solver at N = {n}: {text}: {'met' if met else 'NOT met'}"
                       f"{'' if s['finished'] else ' (not finished)'}.")
    if slope is not None:
        out.append(f"Fitted exponent of solver wall time against N (finished runs, N >= 30): {slope:.2f} "
                   f"(aim: below {EXPONENT_AIM:g}).")
    return out


def population_toml(n: int, workdir: Path) -> Path:
    """The quickstart scenario with its agents replaced by one population of n."""
    base = (ROOT / "scenarios" / "quickstart.toml").read_text(encoding="utf-8")
    head, _, rest = base.partition("[[agents]]")
    tail = rest[rest.index("[run]"):]  # the run settings (and a [solver] table, if the file has one)
    population = (f'[[populations]]\nname = "agent"\ncount = {n}\ngamma_range = [1.0, 3.0]\n'
                  f'xi_sd = 10.0\nxi_rule = "centred"\nseed = {n}\n\n')
    path = workdir / f"scale_{n}.toml"
    text = head.replace('name = "quickstart"', f'name = "scale_{n}"') + population + tail
    path.write_text(text.replace('device = "auto"', 'device = "cpu"'), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1"}


def run_oracle(scenario: Path, methods: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", ORACLE_CHILD, str(scenario), ",".join(methods)],
                          capture_output=True, text=True, env=_env(), cwd=ROOT)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _hwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_solver(scenario: Path, out: Path, max_minutes: float) -> dict:
    """One ``marketeq run``: wall time, peak RSS and how it ended; SIGTERM after max_minutes."""
    args = [sys.executable, "-m", "marketeq", "run", str(scenario), "-o", str(out), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    peak, stopped_at, on_disk = 0, None, None
    while proc.poll() is None:
        peak = max(peak, _hwm(proc.pid) or 0)
        if stopped_at is None and time.perf_counter() - started > 60 * max_minutes:
            proc.send_signal(signal.SIGTERM)
            stopped_at = time.perf_counter()
        if stopped_at is not None and on_disk is None and out.exists():
            on_disk = time.perf_counter()
        time.sleep(0.2)
    wall = time.perf_counter() - started
    row: dict = {"wall_s": wall, "peak_rss": peak, "returncode": proc.returncode,
                 "finished": stopped_at is None and proc.returncode == 0}
    if stopped_at is not None:  # the partial result first, then its oracle comparison
        row["stop_to_exit_s"] = wall - (stopped_at - started)
        row["stop_to_file_s"] = (on_disk or time.perf_counter()) - stopped_at
    if proc.returncode not in (0, 1):
        row["error"] = (proc.stderr.read().strip().splitlines() or ["?"])[-1]
        return row
    from marketeq.hdf5 import read_result

    result = read_result(out)
    metrics = {k: v.value for k, v in result.metrics.items()
               if k.startswith("oracle/") or k in ("clearing", "terminal")}
    row.update(status=result.status, message=result.message, solver_wall_s=result.wall_time_s,
               steps=int(result.history["step"][-1]) if len(result.history["step"]) else 0, metrics=metrics)
    return row


def exponent(ns: list[int], seconds: list[float]) -> float | None:
    """Least-squares slope of log(seconds) against log(N)."""
    if len(ns) < 2:
        return None
    return float(np.polyfit(np.log(ns), np.log(seconds), 1)[0])


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    series = {"Riccati ODE (DOP853)": [(r["n"], r["oracle"]["ode"]["DOP853"]["s"]) for r in rows
                                       if "DOP853" in r.get("oracle", {}).get("ode", {})],
              "oracle roll-out on the test set": [(r["n"], r["oracle"]["paths_s"]) for r in rows
                                                  if "paths_s" in r.get("oracle", {})],
              "solver run (finished)": [(r["n"], r["solver"]["wall_s"]) for r in rows
                                        if r.get("solver", {}).get("finished")],
              "solver run (stopped at the limit)": [(r["n"], r["solver"]["wall_s"]) for r in rows
                                                    if r.get("solver") and not r["solver"]["finished"]]}
    for (label, points), marker in zip(series.items(), "osDx", strict=True):
        if points:
            ax.loglog(*zip(*points, strict=True), marker=marker, label=label)
    ax.set_xlabel("agents N")
    ax.set_ylabel("seconds (2 cores, 1 thread per job)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def tables(rows: list[dict], methods: list[str]) -> list[dict]:
    oracle_rows = []
    for r in rows:
        o = r.get("oracle", {})
        ode = o.get("ode", {})
        oracle_rows.append([r["n"], *(f"{_fmt(ode[m]['s'])} ({ode[m]['rhs']})" if m in ode else
                                      o.get("error", "") for m in methods),
                            _fmt(o.get("paths_s")), _fmt(o.get("peak_rss", 0) / 2**20, ".0f")])
    solver_rows = []
    for r in rows:
        s = r.get("solver")
        if not s:
            continue
        m = s.get("metrics", {})
        ended = "finished" if s["finished"] else s.get("error") or f"not finished ({s.get('status')})"
        solver_rows.append([r["n"], ended, _fmt(s["wall_s"], ".1f"), _fmt(s["peak_rss"] / 2**20, ".0f"),
                            _fmt(r.get("estimate", 0) / 2**20, ".0f"),
                            _fmt(m.get("oracle/sigma_sup_rel_error")), _fmt(m.get("oracle/mu0_rel_error")),
                            _fmt(m.get("clearing")), _fmt(s.get("stop_to_file_s"), ".1f"),
                            _fmt(s.get("stop_to_exit_s"), ".1f")])
    return [{"caption": "Riccati oracle: ODE seconds (right-hand-side evaluations) per integrator, roll-out "
                        "on the test set, peak RSS of the process",
             "columns": ["N", *[f"{m} s" for m in methods], "roll-out s", "peak MiB"], "rows": oracle_rows},
            {"caption": "Solver runs with the default settings (marketeq run, one thread)",
             "columns": ["N", "ended", "wall s", "peak MiB", "estimate MiB", "sigma sup rel err",
                         "mu0 rel err", "clearing", "SIGTERM to file s", "SIGTERM to exit s"],
             "rows": solver_rows}]


def notes(args: argparse.Namespace, rows: list[dict], slope: float | None) -> list[str]:
    skipped = sorted(set(args.sizes) - set(args.solver_sizes))
    out = ["Figure: docs/bench_scale.png (log-log seconds against N).",
           f"Solver runs stopped by SIGTERM after {args.max_minutes:g} minutes count as not finished; their "
           "errors are those of the partial result."]
    if skipped:
        out.append(f"No solver run at N = {', '.join(map(str, skipped))} in this record (oracle only).")
    if slope is None:
        out.append("No fitted exponent: it needs two finished solver runs with N >= 30.")
    return out + verdicts(rows, slope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 30, 100, 300, 1000],
                        help="sizes to time the oracle at")
    parser.add_argument("--solver-sizes", type=int, nargs="*", default=[10, 30, 100, 300, 1000],
                        help="sizes to run the solver on too (all five take about 10 minutes on 2 cores)")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="per solver run")
    parser.add_argument("--methods", nargs="+", default=["DOP853", "Radau", "LSODA"],
                        help="integrators for the Riccati ODE (Radau and LSODA use the analytic Jacobian); "
                             "the last one's oracle is rolled out; Radau is skipped above N = 100")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--quick", action="store_true", help="few sizes, one short solver run (see above)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.solver_sizes, args.max_minutes, args.methods = [10, 30, 100], [10], 3.0, ["LSODA"]
    from marketeq import load_scenario
    from marketeq.memory import estimate_memory

    rows = []
    with Transcript() as transcript, tempfile.TemporaryDirectory() as tmp:
        for n in sorted(set(args.sizes) | set(args.solver_sizes)):
            scenario = population_toml(n, Path(tmp))
            methods = [m for m in args.methods if m != "Radau" or n <= 100]
            row: dict = {"n": n, "estimate": estimate_memory(load_scenario(scenario)).peak}
            if n in args.sizes:
                row["oracle"] = run_oracle(scenario, methods)
                o = row["oracle"]
                ode = ", ".join(f"{m} {v['s']:.3f} s ({v['rhs']} rhs)" for m, v in o.get("ode", {}).items())
                print(f"N = {n}: oracle {ode or o.get('error')}; roll-out {_fmt(o.get('paths_s'))} s; "
                      f"peak {_fmt(o.get('peak_rss', 0) / 2**20, '.0f')} MiB", flush=True)
            if n in args.solver_sizes:
                row["solver"] = s = run_solver(scenario, Path(tmp) / f"scale_{n}.h5", args.max_minutes)
                ended = "finished" if s["finished"] else (
                    f"NOT finished (SIGTERM: result on disk after {_fmt(s.get('stop_to_file_s'), '.1f')} s, "
                    f"exit after {_fmt(s.get('stop_to_exit_s'), '.1f')} s)")
                print(f"N = {n}: solver {ended} in {s['wall_s']:.1f} s, "
                      f"peak {s['peak_rss'] / 2**20:.0f} MiB (estimate {row['estimate'] / 2**20:.0f} MiB), "
                      f"{json.dumps(s.get('metrics', s.get('error')))}", flush=True)
            rows.append(row)
        done = [(r["n"], r["solver"]["wall_s"]) for r in rows
                if r.get("solver", {}).get("finished") and r["n"] >= 30]
        slope = exponent(*zip(*done, strict=True)) if len(done) >= 2 else None
        print(f"fitted exponent of solver wall time against N over N >= 30: "
              f"{_fmt(slope) or 'needs two finished runs'}")
    if args.no_record:
        return
    shown = ROOT / ("results/bench_scale_quick.png" if args.quick else "docs/bench_scale.png")
    methods = list(dict.fromkeys(m for r in rows for m in r.get("oracle", {}).get("ode", {})))
    path = save_record("bench_scale", "Cost against the number of agents (bench_scale)",
                       {"rows": rows, "wall_time_exponent": slope, "tables": tables(rows, methods),
                        **({} if args.quick else {"figure": "docs/bench_scale.png"}),
                        "output": transcript.text, "notes": notes(args, rows, slope)},
                       seeds=[0], quick=args.quick)
    figure(rows, shown)  # after the record: its commit is that of the code, not "+changes" for the figure
    print(f"wrote {path} and {shown}")


if __name__ == "__main__":
    main()
