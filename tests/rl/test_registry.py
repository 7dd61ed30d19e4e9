"""Agent learners are found by name: every registered "module:Class" resolves to a class that takes the
solver's narrow view, and the solver builds it without importing marketeq.rl itself."""

from __future__ import annotations

import inspect
import typing

import pytest

from marketeq.solvers.agent_learners import AGENT_LEARNERS, SolverView, load_learner


@pytest.mark.parametrize("family", sorted(AGENT_LEARNERS))
def test_registered_learners_resolve_and_take_the_view(family):
    learner = load_learner(family)
    assert inspect.isclass(learner)
    assert f"{learner.__module__}:{learner.__name__}" == AGENT_LEARNERS[family]
    hints = typing.get_type_hints(learner.__init__)
    assert hints["solver"] is SolverView  # the view, never the solver class


def test_an_unknown_learner_is_a_key_error():
    with pytest.raises(KeyError):
        load_learner("no-such-family")


def test_an_sb3_scenario_builds_its_learner_through_the_registry(quickstart):
    from marketeq.api import SOLVERS
    from marketeq.rl.agents_phase import SB3Agents
    from marketeq.runtime import Runtime

    scenario = quickstart.replace(**{"market.steps": 5, "solver.agent_learner": "sb3:ppo",
                                     "run.dtype": "float64"})
    solver = SOLVERS["rlink"](scenario, Runtime.from_settings("cpu", "float64", 0))
    assert isinstance(solver.agents, SB3Agents) and solver.agents.algo == "ppo"
    view = solver.agents.solver
    assert isinstance(view, SolverView) and view.model is solver.model
    phi, W = solver.model.phibar.expand(4, 6, -1), solver.model.times.expand(4, -1) * 0
    mu, sigma = view.market_paths(phi, W)
    assert mu.shape == sigma.shape == (4, 6)
