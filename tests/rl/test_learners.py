"""stable-baselines3 learners: a short training run improves an agent; the sb3 agents' phase in the loop."""

from __future__ import annotations

import numpy as np
import pytest

import marketeq
from marketeq.solvers.events import (
    IterationEnded,
    PhaseEnded,
    PhaseStarted,
    RunControl,
    RunEnded,
    RunStarted,
    Snapshot,
)


class Recorder:
    def __init__(self, control: RunControl | None = None, stop_at: tuple[str, int] | None = None) -> None:
        self.events, self.control, self.stop_at = [], control, stop_at

    def on_event(self, event) -> None:
        self.events.append(event)
        if self.stop_at and isinstance(event, IterationEnded) and (event.phase, event.step) == self.stop_at:
            self.control.request_stop()


def test_short_sac_run_improves_an_agent_facing_the_tanh_market(tanh_market):
    from marketeq.rl.agent_training import evaluate_agent, train_agent

    _, untrained = train_agent(tanh_market, 0, "sac", 0, seed=0)
    recorder = Recorder()
    _, trained = train_agent(tanh_market, 0, "sac", 20_000, seed=0, callbacks=[recorder])
    before, after = evaluate_agent(tanh_market, 0, untrained), evaluate_agent(tanh_market, 0, trained)
    assert after.relative_regret < before.relative_regret - 0.15
    assert after.relative_regret < 0.9  # better than not trading at all
    # both relative to not trading on the same paths, so the exogenous part of J cancels in the errors
    gain, gain_before = after.policy_minus_no_trade, before.policy_minus_no_trade
    assert gain.value > gain_before.value + 3 * (gain.stderr + gain_before.stderr)
    kinds = [type(e) for e in recorder.events]
    assert kinds[:2] == [RunStarted, PhaseStarted] and kinds[-2:] == [PhaseEnded, RunEnded]
    iterations = [e for e in recorder.events if isinstance(e, IterationEnded)]
    assert [e.step for e in iterations] == list(range(1, recorder.events[0].total_iterations + 1))
    assert all(np.isfinite(e.losses["agents/loss"]) for e in iterations)


@pytest.fixture(scope="module")
def sb3_loop(tiny):
    scenario = tiny.replace(**{"solver.agent_learner": "sb3:sac", "solver.rounds": 2,
                               "solver.agents_iterations": [3], "solver.market_iterations": [10],
                               "solver.eval_every": 2})
    recorder = Recorder()
    return scenario, recorder, marketeq.solve(scenario, [recorder])


def test_sb3_agents_phase_runs_in_the_loop_with_events(sb3_loop):
    scenario, recorder, result = sb3_loop
    assert result.status == "completed"
    events = recorder.events
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunEnded)
    phases = [(e.round, e.phase) for e in events if isinstance(e, PhaseStarted)]
    assert phases == [(0, "agents"), (0, "market"), (1, "agents"), (1, "market")]
    steps = [e for e in events if isinstance(e, IterationEnded)]
    assert [e.step for e in steps] == list(range(1, scenario.solver.total_iterations + 1))
    agents = [e for e in steps if e.phase == "agents"]
    assert all(np.isfinite(e.losses["agents/loss"]) and "agents/sb3_critic" in e.losses for e in agents)
    assert any(isinstance(e, Snapshot) for e in events)
    assert set(result.history) >= {"agents/loss", "market/link"}
    assert any(key.startswith("actor.") for key in result.weights["policy"])  # the sb3 policy is stored


def test_sb3_run_is_rebuilt_from_its_weights(sb3_loop, tmp_path):
    from marketeq.model.brownian import brownian_test_set
    from marketeq.rl import as_market

    scenario, _, result = sb3_loop
    marketeq.write_result(result, tmp_path / "sb3.h5")
    market = as_market(tmp_path / "sb3.h5")
    m = market.model
    paths = market.paths(brownian_test_set(scenario.run.seed, scenario.run.test_paths, m.n_steps, m.dt))
    np.testing.assert_allclose(paths.numpy().phi, result.paths.phi, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(paths.numpy().mu, result.paths.mu, rtol=1e-6, atol=1e-9)


def test_stop_during_the_sb3_agents_phase(tiny):
    scenario = tiny.replace(**{"solver.agent_learner": "sb3:ppo", "solver.rounds": 1,
                               "solver.agents_iterations": [4], "solver.market_iterations": [5]})
    control = RunControl()
    recorder = Recorder(control, stop_at=("agents", 2))
    result = marketeq.solve(scenario, [recorder], control)
    assert result.status == "interrupted" and result.history["step"][-1] == 2
    assert np.isfinite(result.metrics["sum_J"].value)


def test_sb3_loop_is_reproducible(tiny):
    scenario = tiny.replace(**{"solver.agent_learner": "sb3:td3", "solver.rounds": 1,
                               "solver.agents_iterations": [2], "solver.market_iterations": [4]})
    a, b = marketeq.solve(scenario), marketeq.solve(scenario)
    c = marketeq.solve(scenario, seed=1)
    for key, value in a.weights["policy"].items():
        np.testing.assert_array_equal(value, b.weights["policy"][key])
    assert a.metrics["sum_J"] == b.metrics["sum_J"] != c.metrics["sum_J"]
