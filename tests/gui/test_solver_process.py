"""The solver's side of the app (Qt-free, run in-process here) and a solver process that dies mid-run."""

from __future__ import annotations

import os
import queue
import signal

import pytest

import marketeq
from gui import solver_process
from gui.field_editors import cuda_available
from gui.solver_process import QueueCallback, run_scenario


@pytest.fixture
def in_process(monkeypatch):
    """run_scenario without the child's process settings (SIGINT, nice, threads), which would stay here."""
    monkeypatch.setattr(solver_process, "prepare_child", lambda: None)


def messages(scenario: marketeq.Scenario, control: marketeq.RunControl | None = None) -> list[tuple]:
    box: queue.Queue = queue.Queue()
    run_scenario(scenario, control or marketeq.RunControl(), box)
    return [box.get_nowait() for _ in range(box.qsize())]


def test_a_run_reports_oracle_events_result_then_ends(in_process, quickstart_fast):
    got = messages(quickstart_fast)
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "oracle" and kinds[-2:] == ["finished", "ended"]
    assert set(kinds[1:-2]) == {"event"}
    name, oracle = got[0][1]
    assert name == "riccati" and oracle.sigma.shape[1] == quickstart_fast.market.steps + 1
    events = [payload for kind, payload in got if kind == "event"]
    assert isinstance(events[0], marketeq.RunStarted) and isinstance(events[-1], marketeq.RunEnded)
    result, rows = got[-2][1]
    assert result.status == "completed" and rows == marketeq.metric_rows(result)
    steps = [e.step for e in events if isinstance(e, marketeq.IterationEnded)]
    assert steps == list(range(1, quickstart_fast.solver.total_iterations + 1))


@pytest.mark.skipif(cuda_available(), reason="needs a machine without CUDA")
def test_a_run_that_cannot_start_says_why_and_still_ends(in_process, quickstart_fast):
    got = messages(quickstart_fast.replace(**{"run.device": "cuda"}))
    assert [kind for kind, _ in got][-2:] == ["failed", "ended"]
    assert "CUDA" in got[-2][1] and "\n" not in got[-2][1]


def test_an_orphaned_run_stops_instead_of_training_on():
    box: queue.Queue = queue.Queue()
    control = marketeq.RunControl()
    callback = QueueCallback(box, control)
    callback.on_event("first")
    assert box.get_nowait() == ("event", "first") and not control.stop_requested
    callback.parent = -1  # as if the app had died: this process's parent is no longer the one it had
    callback.on_event("second")
    assert control.stop_requested and box.empty()


def test_a_solver_process_that_dies_is_reported(window, quickstart_fast, qtbot, run_to_end):
    window.form.set_scenario(quickstart_fast.replace(**{"solver.agents_iterations": [500],
                                                         "solver.market_iterations": [500]}))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.model.step >= 5, timeout=60_000)
    os.kill(window.runner.pid, signal.SIGKILL)
    run_to_end(window)
    assert window.model.status == "failed"
    assert "ended unexpectedly" in window.model.message and str(-signal.SIGKILL) in window.model.message
    assert window.controls.run_button.isEnabled() and window.results.result is None
