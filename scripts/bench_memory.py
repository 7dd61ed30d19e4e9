"""Measured peak memory of each stage of a run against marketeq.memory's estimate.

Each (scenario, stage) runs in a fresh process: peak resident memory (ru_maxrss) minus the resident memory
just before the stage (nothing runs before it, so no freed memory is reused). Prints one row per case; the
factors of marketeq/memory.py were fitted so that estimate / measured stays a little above 1.

    python3 scripts/bench_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys

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


def main() -> None:
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
