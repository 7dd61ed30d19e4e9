"""The memory estimate: a run that cannot fit is refused before anything is allocated, in one clear line."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch

import marketeq
from marketeq import memory
from marketeq.cli import main
from marketeq.memory import available_bytes, check_memory, estimate_memory
from marketeq.scenario import ScenarioError, scenario_to_toml

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CPU = torch.device("cpu")


def test_a_huge_batch_is_refused_naming_the_field(quickstart):
    # 10^6 paths x 10^5 steps: terabytes under any estimate, on any machine
    huge = quickstart.replace(**{"solver.batch_size": 1_000_000, "market.steps": 100_000,
                                 "run.test_paths": 1000, "solver.market_batch_size": 1000})
    with pytest.raises(ScenarioError) as info:
        marketeq.solve(huge, device="cpu")
    message = str(info.value)
    assert "\n" not in message and message.startswith("solver.batch_size = 1000000: the run would need about")
    assert "(agents stage)" in message
    assert "reduce solver.batch_size (or market.steps, solver.agents_hidden)" in message


def test_the_cli_refuses_before_allocating_and_writes_nothing(quickstart, tmp_path):
    scenario = tmp_path / "big.toml"
    scenario.write_text(scenario_to_toml(quickstart.replace(**{"run.test_paths": 10_000_000,
                                                                "market.steps": 100_000})))
    out = tmp_path / "big.h5"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["run", str(scenario), "-o", str(out), "--quiet", "--device", "cpu"]) == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "run.test_paths = 10000000" in lines[0] and "(test stage)" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.toml"]


def test_the_shipped_scenarios_fit_on_a_24_gib_machine():
    for path in sorted(SCENARIOS.glob("*.toml")):
        estimate = estimate_memory(marketeq.load_scenario(path))
        assert 0 < estimate.peak < 4 * 2**30, path.name


def test_the_estimate_follows_the_sizes(quickstart):
    base = estimate_memory(quickstart)
    double = estimate_memory(quickstart.replace(**{"solver.batch_size": 2 * quickstart.solver.batch_size}))
    assert double.agents == 2 * base.agents and double.market == base.market and double.test == base.test
    wide = estimate_memory(quickstart.replace(**{"solver.nonlinear": "on",
                                                  "solver.agents_hidden": [512, 512]}))
    assert wide.agents > 5 * base.agents
    as64 = estimate_memory(quickstart.replace(**{"run.dtype": "float64"}))
    assert as64.agents == 2 * base.agents and as64.parameters == 2 * base.parameters
    cache = memory.CACHE_PER_AGENT * quickstart.solver.market_batch_size * 51 * 3 * 4  # market's roll-out
    assert as64.test - base.test == cache  # the rest of the test stage is float64 anyway


def test_free_gpu_memory_is_what_counts_on_cuda(quickstart, monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**20, 2**34))
    with pytest.raises(ScenarioError, match="of GPU memory .market stage. but 1 MiB are available"):
        check_memory(quickstart, torch.device("cuda"))
    check_memory(quickstart, CPU)  # the host has room


def test_available_memory_is_read_from_the_system():
    free = available_bytes()
    assert free is not None and 2**20 < free
    with open("/proc/meminfo", encoding="ascii") as fh:
        total = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemTotal:"))
    assert free <= total
    assert memory.ROOM < 1


@pytest.mark.parametrize("changes", [{}, {"solver.nonlinear": "on", "solver.rate_profile": "shared",
                                          "solver.agents_hidden": [16, 8], "solver.market_hidden": [12]}])
def test_parameter_count_is_that_of_the_networks(quickstart, changes):
    from marketeq.runtime import Runtime
    from marketeq.solvers.rlink import ReinforcementLinkSolver

    scenario = quickstart.replace(**changes)
    solver = ReinforcementLinkSolver(scenario, Runtime.from_settings("cpu", "float32", 0))
    built = sum(p.numel() for net in (solver.policy, solver.market) for p in net.parameters())
    assert memory.parameter_count(scenario) == built


def test_many_agents_cost_more_than_linearly_through_the_policy_gains(quickstart):
    agents = [{"gamma": 1.0 + i / 100, "xi": float(i % 2 * 2 - 1)} for i in range(200)]
    small, large = (estimate_memory(quickstart.replace(agents=agents[:n])) for n in (100, 200))
    assert large.parameters > 3.5 * small.parameters and large.gains > 3.5 * small.gains
    assert large.test < 2.1 * small.test and large.peak > small.peak
