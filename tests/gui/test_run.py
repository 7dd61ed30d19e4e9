"""Real runs through the app's worker thread: complete, stop, pause, export and re-open, timer gaps.

Every run is ``marketeq.solve`` on the shipped quickstart scenario with a schedule of seconds.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QEventLoop, Qt, QTimer

import marketeq
from gui.app import build_window
from gui.field_editors import cuda_available
from gui.main_window import MainWindow
from gui.results_panel import display_rows

EVENT_KINDS = {"RunStarted", "PhaseStarted", "IterationEnded", "Snapshot", "PhaseEnded", "RunEnded"}
TICK_MS = 10
# A blocked event loop shows as a gap of seconds; scripts/screenshot_gui.py measures the actual gaps (tens of
# ms). This bound only has to tell "blocked" from "running" on a loaded machine.
MAX_GAP_S = 1.0


@pytest.fixture(scope="module")
def finished(qapp, quickstart_path, quickstart_fast):
    """One quickstart run to completion, with a 10 ms timer recording when the event loop got to it."""
    window = build_window(str(quickstart_path))
    window.show()
    window.form.set_scenario(quickstart_fast.replace(**{"solver.agents_iterations": [60],
                                                         "solver.market_iterations": [60]}))
    events, ticks = [], []
    window.runner.event.connect(events.append)
    timer = QTimer(interval=TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    for _ in range(5):
        qapp.processEvents()
    loop = QEventLoop()  # the app's own kind of event loop, not a polling loop
    window.runner.stopped.connect(loop.quit)
    QTimer.singleShot(300_000, loop.quit)
    timer.start()
    started = time.perf_counter()
    assert window.start_run()
    loop.exec()
    timer.stop()
    for _ in range(10):  # deliver the last queued signals
        qapp.processEvents()
    seconds = time.perf_counter() - started
    yield SimpleNamespace(window=window, events=events, ticks=np.array(ticks), seconds=seconds)
    window.close()


def test_quickstart_runs_to_completion_and_feeds_every_plot(finished):
    window, model = finished.window, finished.window.model
    assert model.status == "completed", model.message
    assert {type(e).__name__ for e in finished.events} == EVENT_KINDS
    window.plots.refresh(model, force=True)
    n_points = window.form.scenario.market.steps + 1
    for key in ("sigma", "mu_mean", "mu_path", "S_path"):
        for role in ("learned", "oracle"):
            x, y = window.plots.curves[f"{key}:{role}"].getData()
            assert len(x) == n_points and np.isfinite(y).all(), key
    assert window.plots.curves["sigma:oracle"].name() == "oracle (riccati)"
    for plot in ("rates", "holdings"):
        for agent in range(3):
            assert len(window.plots.curves[f"{plot}:agent {agent}:learned"].getData()[0]) == n_points
    assert len(window.plots.curves["losses:agents/loss"].getData()[0]) == 120
    assert len(window.plots.curves["errors:clearing (shares²/year²)"].getData()[0]) > 3
    assert window.controls.progress.value() == window.controls.progress.maximum()
    assert window.controls.progress.text().startswith("completed")
    assert window.controls.run_button.isEnabled() and not window.controls.stop_button.isEnabled()


def test_results_table_has_the_cli_rows(finished):
    results = finished.window.results
    assert results.result is not None and results.result.status == "completed"
    names = list(results.result.scenario.agent_names)
    assert results.rows() == display_rows(marketeq.metric_rows(results.result), names)
    assert results.export_button.isEnabled()


def test_the_event_loop_keeps_ticking_during_a_run(finished, record_property):
    gaps = np.diff(finished.ticks)
    record_property("max_timer_gap_s", float(gaps.max()))
    print(f"\n{len(finished.ticks)} ticks of a {TICK_MS} ms timer over a {finished.seconds:.1f} s run: "
          f"max gap {1000 * gaps.max():.0f} ms, 99th percentile {1000 * np.percentile(gaps, 99):.0f} ms")
    assert finished.seconds > 1.0 and len(finished.ticks) > 0.4 * finished.seconds * 1000 / TICK_MS
    assert gaps.max() < MAX_GAP_S


def test_export_and_reopen_hdf5(finished, qtbot, tmp_path):
    results = finished.window.results
    path = tmp_path / "quickstart.h5"
    assert results.export(path), results.error.text()
    viewer = MainWindow()
    qtbot.addWidget(viewer)
    opened = viewer.results.open_file(path)
    assert opened is not None and not viewer.runner.running  # viewed, not trained
    assert viewer.model.status == "completed" and viewer.model.curves is not None
    assert viewer.model.oracle_name == "riccati"
    assert viewer.results.rows() == results.rows()
    assert viewer.form.scenario == finished.window.form.scenario
    viewer.plots.refresh(viewer.model, force=True)
    assert len(viewer.plots.curves["sigma:learned"].getData()[0]) == opened.scenario.market.steps + 1
    assert len(viewer.plots.curves["losses:agents/loss"].getData()[0]) == 120
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file")
    assert viewer.results.open_file(bad) is None
    message = viewer.results.error.text()
    assert message and "\n" not in message and viewer.model.status == "completed"


def test_stop_midway_leaves_a_usable_partial_result(window, quickstart_fast, qtbot, run_to_end, tmp_path):
    window.form.set_scenario(quickstart_fast.replace(**{"solver.agents_iterations": [500],
                                                         "solver.market_iterations": [500]}))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.model.step >= 15, timeout=60_000)
    qtbot.mouseClick(window.controls.stop_button, Qt.MouseButton.LeftButton)
    assert window.model.status == "stopping"
    run_to_end(window)
    model, result = window.model, window.results.result
    assert model.status == "interrupted" and 15 <= model.step < 1000
    assert result is not None and result.status == "interrupted" and result.paths is not None
    assert window.results.rows() and "sum_J" in dict((r[0], r) for r in window.results.rows())
    assert model.curves is not None and window.controls.run_button.isEnabled()
    path = tmp_path / "partial.h5"
    assert window.results.export(path)
    assert marketeq.read_result(path).status == "interrupted"


@pytest.mark.skipif(cuda_available(), reason="needs a machine without CUDA")
def test_a_run_that_cannot_start_reports_why(window, quickstart_fast, run_to_end):
    window.form.set_scenario(quickstart_fast.replace(**{"run.device": "cuda"}))
    assert window.start_run()
    run_to_end(window)
    assert window.model.status == "failed" and "CUDA" in window.model.message
    assert window.controls.status.text() == window.model.message
    assert window.controls.run_button.isEnabled() and window.results.result is None


def test_pause_holds_the_run_and_resume_continues(window, quickstart_fast, qtbot, run_to_end):
    window.form.set_scenario(quickstart_fast.replace(**{"solver.agents_iterations": [500],
                                                         "solver.market_iterations": [500]}))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.model.step >= 5, timeout=60_000)
    qtbot.mouseClick(window.controls.pause_button, Qt.MouseButton.LeftButton)
    assert window.controls.pause_button.text() == "Resume" and window.model.status == "paused"
    qtbot.wait(300)  # the iteration in flight finishes
    held = window.model.step
    qtbot.wait(400)
    assert window.model.step == held and window.runner.running
    qtbot.mouseClick(window.controls.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model.step > held + 2, timeout=60_000)
    window.stop_run()
    run_to_end(window)
    assert window.model.status == "interrupted"
