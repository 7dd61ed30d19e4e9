"""Measured peak memory of a run against marketeq.memory's estimate.

Stages (default): each (scenario, stage) runs in a fresh process: peak resident memory (ru_maxrss) minus
the resident memory just before the stage (nothing runs before it, so no freed memory is reused).

Whole runs (``--runs N ...``): ``python -m marketeq run`` on the quickstart's settings with N agents from one
population (gamma uniform on [1, 3], xi drawn and centred), shortened to one round of ``--iterations`` per
phase (at least one snapshot, good-state copy and checkpoint, which is where a run's memory settles);
peak RSS (VmHWM) of the process against the estimate ``validate`` and ``run`` print.

    python3 scripts/bench_memory.py
    python3 scripts/bench_memory.py --runs 3 10 30 100 300 1000
    python3 scripts/bench_memory.py --quick --record   # whole runs, N = 3 and 10, 10 iterations per phase
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(1)
import marketeq
from marketeq.api import _oracle
from marketeq.memory import estimate_memory
from marketeq.metrics import compute_metrics
from marketeq.runtime import Runtime, seed_everything
from marketeq.solvers.rlink import ReinforcementLinkSolver

base, changes, stage = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
scenario = marketeq.load_scenario(f"scenarios/{base}.toml").replace(**changes)
runtime = Runtime.from_settings("cpu", scenario.run.dtype, 0)
seed_everything(0)
solver = ReinforcementLinkSolver(scenario, runtime)
opt = torch.optim.Adam(solver.policy.parameters() if stage == "agents" else solver.market.parameters())
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()
base = rss()
if stage == "agents":
    solver._agents_step(opt, 1.0)
elif stage == "market":
    solver._market_step(opt, solver._market_cache(0))
else:
    m = solver.model
    test = marketeq.brownian_test_set(0, scenario.run.test_paths, m.n_steps, m.dt, "cpu", runtime.dtype)
    paths = solver.evaluate(test).numpy()
    reference = _oracle(m, test)
    compute_metrics(m, paths, reference[1] if reference else None, reference[2] if reference else None)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"measured": peak - base, "estimate": getattr(estimate_memory(scenario), stage)}))
"""

BIG = {"market.steps": 100, "solver.batch_size": 4096, "solver.market_batch_size": 4096,
       "run.test_paths": 20000}
CASES = [  # (scenario in scenarios/, changes)
    ("quickstart", BIG),
    ("quickstart", {**BIG, "frictions.q": 1.5}),
    ("quickstart", {**BIG, "run.dtype": "float64", "market.steps": 200, "frictions.q": 1.5,
                    "solver.agents_hidden": [128, 128], "solver.market_hidden": [128, 128]}),
    ("paper_e1_quadratic_10_agents", {**BIG, "run.test_paths": 10000}),
    ("paper_e3_power_10_agents", {**BIG, "run.test_paths": 10000}),
]


def whole_runs(sizes: list[int], iterations: int, record: bool, notes: list[str],
               quick: bool = False) -> None:
    from bench_scale import population_toml, run_solver
    from benchlib import Transcript, save_record

    from marketeq import load_scenario
    from marketeq.memory import estimate_memory
    from marketeq.scenario import scenario_to_toml

    rows = []
    with Transcript() as transcript, tempfile.TemporaryDirectory() as tmp:
        print(f"{'N':>5} {'measured MiB':>13} {'estimate MiB':>13} {'ratio':>6}  estimate terms (MiB)")
        for n in sizes:
            path = population_toml(n, Path(tmp))
            scenario = load_scenario(path).replace(**{"solver.rounds": 1,
                                                      "solver.agents_iterations": [iterations],
                                                      "solver.market_iterations": [iterations]})
            path.write_text(scenario_to_toml(scenario), encoding="utf-8")
            estimate = estimate_memory(scenario)
            run = run_solver(path, Path(tmp) / "out.h5", max_minutes=120)
            ratio = estimate.peak / max(run["peak_rss"], 1)
            terms = " ".join(f"{k} {v / 2**20:.0f}" for k, v in estimate.terms().items())
            failed = "" if run["finished"] else f"  ({run.get('error', 'not finished')})"
            print(f"{n:>5} {run['peak_rss'] / 2**20:13.0f} {estimate.peak / 2**20:13.0f} {ratio:6.2f}  "
                  f"{terms}{failed}", flush=True)
            rows.append([n, round(run["peak_rss"] / 2**20), round(estimate.peak / 2**20), round(ratio, 2)])
    if record:
        caption = f"quickstart settings, N agents, one round of {iterations} iterations per phase"
        save_record("bench_memory", "Peak memory of whole runs against the estimate (bench_memory --runs)",
                    {"iterations": iterations, "output": transcript.text, "notes": notes, "tables": [{
                        "caption": caption, "rows": rows,
                        "columns": ["N", "measured MiB", "estimate MiB", "estimate / measured"]}]},
                    seeds=[0], quick=quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", help="whole runs with these numbers of agents")
    parser.add_argument("--iterations", type=int, default=None, help="per phase, in --runs (default 60)")
    parser.add_argument("--quick", action="store_true", help="whole runs with N = 3, 10 and 10 iterations")
    parser.add_argument("--record", action="store_true", help="write data/results/bench_memory.json")
    parser.add_argument("--note", action="append", default=[], help="a line for the record's notes")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.iterations = args.runs or [3, 10], args.iterations or 10
    if args.runs:
        whole_runs(args.runs, args.iterations or 60, args.record, args.note, args.quick)
        return
    print(f"{'case':<5} {'stage':<7} {'measured MiB':>13} {'estimate MiB':>13} {'ratio':>6}")
    for index, (base, case) in enumerate(CASES):
        for stage in ("agents", "market", "test"):
            done = subprocess.run([sys.executable, "-c", CHILD, base, json.dumps(case), stage],
                                  capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            ratio = row["estimate"] / max(row["measured"], 1)
            print(f"{index:<5} {stage:<7} {row['measured'] / 2**20:13.1f} {row['estimate'] / 2**20:13.1f} "
                  f"{ratio:6.2f}")


if __name__ == "__main__":
    main()
