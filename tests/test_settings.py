"""No silent settings: every (method, mode, setting) pair either changes the run or is refused in one line
naming the setting and the method; the method vocabulary maps earlier names; warm_start = false chains
rounds; docs/scenario.md is generated from the schema."""

from __future__ import annotations

import typing

import pytest
import torch

import marketeq
from marketeq.compare import parse_methods
from marketeq.runtime import Runtime
from marketeq.scenario import Scenario, ScenarioError, SolverSettings
from marketeq.solvers.rlink import ReinforcementLinkSolver

QUICK = "scenarios/quickstart.toml"
LINK = {"link_form", "link_expectation", "link_solve", "link_weight"}
BASELINES = {"market_lr", "market_batch_size", "warm_start", "link_expectation", "link_solve"}
ADAPTIVE = {"tolerance", "max_rounds", "max_minutes"}
# (method, mu_mode, q) -> the settings it never reads, written out from the solvers' code, not from the rule
UNUSED = {
    ("rlink", "learned", 2.0): ADAPTIVE,  # the gradient link: every setting is read
    ("rlink", "known", 2.0): ADAPTIVE | LINK,  # no link at all
    ("rlink", "learned", 1.5): ADAPTIVE | {"link_form", "link_weight", "link_expectation"},  # the exact link
    ("rlink", "implied", 1.5): ADAPTIVE | LINK,
    ("joint", "learned", 2.0): ADAPTIVE | BASELINES | {"agent_learner"},
    ("joint", "known", 2.0): ADAPTIVE | BASELINES | LINK | {"agent_learner"},
    ("fbsde", "learned", 2.0): ADAPTIVE | BASELINES | LINK | {"agent_learner", "rate_profile"},
    ("fbsde", "learned", 1.5): ADAPTIVE | BASELINES | LINK | {"agent_learner", "rate_profile"},
}
SKIP = {"method", "schedule", "mu_mode"}  # what the cases choose


def other_value(name: str) -> object:
    """A valid value of a solver setting other than its default."""
    info = SolverSettings.model_fields[name]
    default = info.default
    choices = typing.get_args(info.annotation) if typing.get_origin(info.annotation) is typing.Literal else ()
    if name == "link_expectation":
        return "pathwise"  # the one value the exact link would ignore
    if name == "agent_learner":
        return "sb3:ppo"
    if choices:
        return next(c for c in choices if c != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, list):
        return [default[0] * 2] if default[0] else [1]
    if name == "tolerance":
        return 1e-3
    return default * 2 if default else 1


@pytest.fixture(scope="module")
def base() -> Scenario:
    return marketeq.load_scenario(QUICK)


@pytest.mark.parametrize("case", list(UNUSED), ids=lambda c: "-".join(map(str, c)))
def test_every_setting_is_used_or_refused_in_one_line(base, case):
    method, mu_mode, q = case
    scenario = base.with_method(**{"solver.method": method, "solver.mu_mode": mu_mode, "frictions.q": q,
                                   "solver.schedule": "rounds"})
    for name in SolverSettings.model_fields:
        if name in SKIP:
            continue
        value = other_value(name)
        if name not in UNUSED[case]:
            assert scenario.replace(**{f"solver.{name}": value}).solver.model_dump()[name] == value, name
            continue
        with pytest.raises(ScenarioError) as info:
            scenario.replace(**{f"solver.{name}": value})
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"solver.{name} = "), message
        named = f"'{method}'" in message or "schedule = 'rounds'" in message
        assert named and "not used" in message, message


def test_with_method_drops_what_the_new_method_does_not_read(base):
    tuned = base.replace(**{"solver.market_lr": [3e-4], "solver.rate_profile": "shared"})
    with pytest.raises(ScenarioError, match="solver.market_lr"):
        tuned.replace(**{"solver.method": "fbsde"})
    fbsde = tuned.with_method(**{"solver.method": "fbsde"})
    assert fbsde.solver.market_lr == [1e-3] and fbsde.solver.rate_profile == "free"
    joint = tuned.with_method(**{"solver.method": "joint"})
    assert joint.solver.rate_profile == "shared"  # joint reads it: kept


def test_earlier_method_names_still_read(base):
    data = base.model_dump(by_alias=True)
    data["solver"]["method"] = "combo"
    assert Scenario.model_validate(data).solver.method == "joint"
    assert parse_methods("rgan,rgan-known,combo") == ["rlink", "rlink-known", "joint"]


def test_without_warm_start_the_market_carries_over_and_the_agents_start_afresh(base):
    scenario = base.replace(**{"solver.warm_start": False, "solver.rounds": 2,
                               "solver.agents_iterations": [2],
                               "solver.market_iterations": [2], "solver.batch_size": 16,
                               "solver.market_batch_size": 16, "market.steps": 5, "run.dtype": "float64"})
    solver = ReinforcementLinkSolver(scenario, Runtime.from_settings("cpu", "float64", 0))
    seen: list[tuple[dict, dict]] = []
    original = solver.agents.train

    def train(round_index, plan):  # the networks each agents' phase starts from
        seen.append(({k: v.clone() for k, v in solver.market.state_dict().items()},
                     {k: v.clone() for k, v in solver.policy.state_dict().items()}))
        original(round_index, plan)
        seen.append(({k: v.clone() for k, v in solver.market.state_dict().items()},
                     {k: v.clone() for k, v in solver.policy.state_dict().items()}))

    solver.agents.train = train
    market_end: list[dict] = []
    solver._iterate = _recording(solver, market_end)  # noqa: SLF001 - observe the phases' ends
    solver.run()
    # round 1 starts from the market that round 0's market phase ended with
    after_round0 = market_end[0]
    start_round1_market, start_round1_policy = seen[2]
    assert all(torch.equal(after_round0[k], v) for k, v in start_round1_market.items())
    end_round0_policy = seen[1][1]
    assert not all(torch.equal(end_round0_policy[k], v) for k, v in start_round1_policy.items())


def _recording(solver, market_end):
    iterate = solver._iterate  # noqa: SLF001

    def wrapped(round_index, phase, iterations, step_fn):
        losses = iterate(round_index, phase, iterations, step_fn)
        if phase == "market":
            market_end.append({k: v.clone() for k, v in solver.market.state_dict().items()})
        return losses

    return wrapped


def test_every_setting_is_described_and_docs_scenario_md_is_current():
    from pathlib import Path

    from marketeq.scenario.reference import SECTIONS, scenario_reference

    missing = [f"{title}.{name}" for title, model in SECTIONS for name, info in model.model_fields.items()
               if not info.description and name not in ("market", "agents", "frictions", "solver", "run")]
    assert missing == []
    page = Path(__file__).resolve().parents[1] / "docs" / "scenario.md"
    assert page.read_text(encoding="utf-8") == scenario_reference(), \
        "docs/scenario.md is stale: python -m marketeq.scenario.reference"


def test_result_files_written_with_earlier_method_names_still_read(base, tmp_path):
    import numpy as np

    from marketeq.hdf5 import read_comparison, read_result, write_comparison, write_result
    from marketeq.results import Metric, RunResult

    def result(solver: str) -> RunResult:
        return RunResult(scenario=base, scenario_toml=marketeq.scenario_to_toml(base), solver=solver,
                         status="completed", provenance={"seed": 0}, history={"step": np.zeros(0, np.int64)},
                         paths=None, metrics={"sum_J": Metric(-0.5, 0.01)})

    old = write_comparison({"rgan": result("rlink"), "combo": result("combo")}, tmp_path / "old.h5")
    assert list(read_comparison(old)) == ["rlink", "joint"]
    assert read_result(old, method="rgan").solver == "rlink"
    assert read_result(old, method="joint").solver == "joint"  # the stored "combo" under its current name
    assert read_result(write_result(result("combo"), tmp_path / "one.h5")).solver == "joint"
