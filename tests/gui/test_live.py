"""Through the app's solver process: the oracle from the start of a real run, the locked form, Quit asking,
the equilibrium gap from the button; and two results overlaid."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

import marketeq
from gui.app import build_window

LONG = {"solver.agents_iterations": [400], "solver.market_iterations": [400]}


def test_the_oracle_is_drawn_before_the_first_round_ends_and_the_form_is_locked(
        window, quickstart_fast, qtbot, run_to_end, answers):
    window.form.set_scenario(quickstart_fast.replace(**LONG))
    ended = []
    window.runner.event.connect(lambda e: ended.append(e) if isinstance(e, marketeq.PhaseEnded) else None)
    assert window.start_run()
    oracle = window.plots.curves["sigma:oracle"]
    qtbot.waitUntil(lambda: len(oracle.getData()[0] if oracle.getData()[0] is not None else []) > 0,
                    timeout=60_000)
    assert not ended and window.runner.running  # drawn while the first round trains
    assert len(oracle.getData()[0]) == window.form.scenario.market.steps + 1
    # locked: the form is what is being run; nothing can start or open over the run
    assert not window.form.fields.isEnabled() and not window.form.lock_label.isHidden()
    actions = window.actions_
    assert not actions["run"].isEnabled() and not actions["open_result"].isEnabled()
    assert actions["stop"].isEnabled() and actions["pause"].isEnabled() and not actions["export"].isEnabled()
    assert not window.results.open_button.isEnabled() and not window.results.gap_button.isEnabled()
    answers.reply = False
    assert not window.close() and window.runner.running  # Quit during a run asks first
    assert answers.asked == ["Quit during a run?"]
    window.stop_run()
    run_to_end(window)
    assert window.form.fields.isEnabled() and window.actions_["run"].isEnabled()
    assert window.actions_["export"].isEnabled() and window.results.result.status == "interrupted"
    assert window.results.differs.isHidden()  # the form is the scenario of the shown run
    assert "lambda = 0.01" in window.results.title.text()
    assert any("run of quickstart started" in line for line in window.log.lines())


@pytest.fixture(scope="module")
def two_runs(qapp, quickstart_path, quickstart_fast):
    """Two quickstart results that differ in lambda, delivered as the solver process delivers a finished
    run (the oracle's results stand in for trained ones: a second each instead of a run each)."""
    window = build_window(str(quickstart_path), "dark")
    window.show()
    for lam in (0.01, 0.02):
        result = marketeq.oracle_result(quickstart_fast.replace(**{"frictions.lambda": lam}))
        window.form.set_scenario(result.scenario)
        window._finished(result, marketeq.metric_rows(result))
        window._job_ended()
    yield window
    if window.runner.running:
        window.runner.stop()
        window.runner.wait()
    window.close()


def test_two_runs_overlaid_with_their_differing_parameter_in_the_legend(two_runs):
    window = two_runs
    assert [e.result.scenario.frictions.lam for e in window.runs.entries] == [0.01, 0.02]
    assert window.results.result is window.runs.entries[1].result
    window.runs.set_checked(1)
    window.runs.set_checked(2)  # the shown run itself is not drawn twice
    assert window.plots.overlay_labels == ["#1 lambda=0.01"]
    x, y = window.plots.curves["overlay:sigma:0"].getData()
    assert len(x) == window.form.scenario.market.steps + 1
    legend = [label.text for _sample, label in window.plots.plots["sigma"].getPlotItem().legend.items]
    assert "#1 lambda=0.01" in legend
    assert any("result: oracle" in line for line in window.log.lines())


def test_the_gap_button_adds_per_agent_gains(two_runs, qtbot):
    window = two_runs
    window.gap_iterations = 10
    progress = []
    window.runner.gap_progress.connect(lambda done, total: progress.append((done, total)))
    qtbot.mouseClick(window.results.gap_button, Qt.MouseButton.LeftButton)
    assert window.runner.job == "gap" and not window.results.gap_button.isEnabled()
    assert not window.actions_["run"].isEnabled()
    qtbot.waitUntil(lambda: not window.runner.running, timeout=120_000)
    qtbot.wait(50)
    rows = {row[0]: row for row in window.results.rows()}
    for name in window.results.result.scenario.agent_names:
        value = rows[f"gap: {name}"][1]
        assert "±" in value and float(value.split("±")[0]) == pytest.approx(float(value.split("±")[0]))
    assert "gap: total / gain" in rows
    assert progress[-1] == (10, 10) and progress == sorted(progress)  # progress from the solver process
    assert window.results.gap_progress.isHidden() and window.results.gap_button.isEnabled()
    assert any("equilibrium gap: total" in line for line in window.log.lines())
