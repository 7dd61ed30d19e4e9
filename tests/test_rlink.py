"""The reinforcement-link solver: convergence to the Riccati oracle, determinism, events, control."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import marketeq
from marketeq.solvers.events import IterationEnded, PhaseStarted, RunControl, RunEnded, RunStarted, Snapshot


class Recorder:
    def __init__(self, stop_after: int | None = None, control: RunControl | None = None) -> None:
        self.events, self.stop_after, self.control = [], stop_after, control

    def on_event(self, event) -> None:
        self.events.append(event)
        if self.stop_after and isinstance(event, IterationEnded) and event.step == self.stop_after:
            self.control.request_stop()


@pytest.fixture(scope="module")
def tiny_result(request):
    tiny = request.getfixturevalue("tiny")
    recorder = Recorder()
    return tiny, recorder, marketeq.solve(tiny, [recorder])


def test_short_run_lands_near_the_riccati_oracle(tiny_result):
    _, _, result = tiny_result
    assert result.status == "completed" and result.oracle_name == "riccati"
    m = result.metrics
    # The untrained (frictionless) market misses sigma by 12% here; two short rounds reach about 3%.
    assert m["oracle/sigma_sup_rel_error"].value < 0.05
    assert m["oracle/mu0_rel_error"].value < 0.08
    assert m["oracle/S0_abs_error"].value < 5e-3
    assert m["oracle/rates_rel_mse"].value < 0.05
    assert m["terminal"].value < 1e-4


def test_events_arrive_in_order(tiny_result):
    tiny, recorder, result = tiny_result
    events = recorder.events
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunEnded)
    assert events[0].total_iterations == tiny.solver.total_iterations
    phases = [(e.round, e.phase) for e in events if isinstance(e, PhaseStarted)]
    assert phases == [(0, "agents"), (0, "market"), (1, "agents"), (1, "market")]
    steps = [e.step for e in events if isinstance(e, IterationEnded)]
    assert steps == list(range(1, tiny.solver.total_iterations + 1))
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    assert snapshots and all(s.sigma.shape == (tiny.market.steps + 1,) for s in snapshots)
    assert np.all(np.diff(result.history["step"]) > 0)
    assert np.isfinite(result.history["agents/loss"][0]) and "market/link" in result.history


def test_same_seed_same_result(tiny):
    short = tiny.replace(**{"solver.rounds": 1, "solver.agents_iterations": [15],
                            "solver.market_iterations": [15]})
    a, b = marketeq.solve(short), marketeq.solve(short)
    c = marketeq.solve(short, seed=1)
    for net in a.weights:
        for key in a.weights[net]:
            np.testing.assert_array_equal(a.weights[net][key], b.weights[net][key])
    assert a.metrics["sum_J"] == b.metrics["sum_J"]
    assert a.metrics["sum_J"] != c.metrics["sum_J"]


def test_agents_are_price_takers(tiny):
    """Training the agents never moves the market's parameters."""
    from marketeq.runtime import Runtime
    from marketeq.solvers.rlink import ReinforcementLinkSolver

    solver = ReinforcementLinkSolver(tiny, Runtime.from_settings("cpu", "float64", 0))
    before = {k: v.clone() for k, v in solver.market.state_dict().items()}
    optimizer = torch.optim.Adam(solver.policy.parameters(), lr=1e-2)
    for _ in range(3):
        solver._agents_step(optimizer, clearing_weight=1.0)
    assert all(p.grad is None for p in solver.market.parameters())
    for key, value in solver.market.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_stop_leaves_a_usable_partial_result(tiny):
    control = RunControl()
    recorder = Recorder(stop_after=25, control=control)
    result = marketeq.solve(tiny, [recorder], control)
    assert result.status == "interrupted" and "25" in result.message
    assert isinstance(recorder.events[-1], RunEnded) and recorder.events[-1].status == "interrupted"
    assert result.paths is not None and np.isfinite(result.metrics["sum_J"].value)
    assert result.history["step"][-1] == 25


@pytest.mark.usefixtures("single_thread")
def test_a_single_non_finite_loss_is_rolled_back(micro, monkeypatch):
    """One NaN loss at iteration 6: back to the last good state (the phase start), learning rate halved,
    and the run completes with finite metrics. Persistent NaNs: tests/test_divergence.py."""
    from marketeq.solvers import rlink
    from marketeq.solvers.events import RolledBack

    real = rlink.agents_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, logs = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 7:
            logs = {**logs, "agents/loss": loss * float("nan")}
        return loss, logs

    monkeypatch.setattr(rlink, "agents_loss", poisoned)
    recorder = Recorder()
    result = marketeq.solve(micro, [recorder])
    rolled = [e for e in recorder.events if isinstance(e, RolledBack)]
    assert [(e.failed_step, e.to_step, e.reason) for e in rolled] == [(6, 0, "agents/loss = nan")]
    assert result.status == "completed" and "recovered from 1 divergence" in result.message
    assert np.isfinite(result.history["agents/loss"]).sum() == micro.solver.agents_iterations[0] * 2
    assert all(np.isfinite(m.value) for m in result.metrics.values())


def test_engine_never_imports_qt():
    code = ("import sys, marketeq, marketeq.cli; "
            "sys.exit(any(m.startswith(('PySide6', 'PyQt', 'pyqtgraph')) for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
