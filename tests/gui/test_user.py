"""The app as a user meets it, without training: wheel, tooltips, enabled actions, file outcomes, asking
before edits are lost, feedback that follows the state, remembered settings. Results come from the oracle
(``marketeq.oracle_result``), which takes a fraction of a second."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QKeySequence, QWheelEvent
from PySide6.QtWidgets import QApplication

import marketeq
from gui import plots
from gui.app import build_window
from gui.results_panel import display_rows
from marketeq.scenario import Agent


@pytest.fixture
def win(qtbot, quickstart_path):
    window = build_window(str(quickstart_path), "dark")
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture(scope="module")
def oracle_result(quickstart_fast):
    return marketeq.oracle_result(quickstart_fast)


def show(window, result) -> None:
    window.model.load_result(result)
    window.results.show_result(result, marketeq.metric_rows(result))
    window.form.set_scenario(result.scenario)
    window._update_buttons()


def wheel(widget, steps: int = -2) -> bool:
    """Turn the wheel over ``widget``; True when the widget took the event."""
    event = QWheelEvent(QPointF(5, 5), QPointF(widget.mapToGlobal(QPoint(5, 5))), QPoint(0, 0),
                        QPoint(0, 120 * steps), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_the_wheel_changes_a_choice_only_when_it_has_focus(win):
    combo = win.form.editors["solver.method"].widget
    before = combo.currentIndex()
    assert not combo.hasFocus() and not wheel(combo)  # passed on: the form scrolls instead
    assert combo.currentIndex() == before and not win.form.modified
    assert combo.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel does not give it focus either
    combo.setFocus()
    QApplication.processEvents()
    if combo.hasFocus():  # offscreen windows get focus where the platform allows it
        wheel(combo)
        assert combo.currentIndex() != before
    shipped = win.form.shipped
    index = shipped.currentIndex()
    assert not wheel(shipped) and shipped.currentIndex() == index


def test_every_field_has_the_schema_description_as_its_tooltip(win):
    fields = marketeq.Scenario.model_fields
    walked = 0
    for key in ("name", "description"):
        assert win.form.editors[key].widget.toolTip() == (fields[key].description or f"{key} (str)")
    for section in ("market", "frictions", "solver", "run"):
        for name, info in fields[section].annotation.model_fields.items():
            key = info.alias or name
            tip = win.form.editors[f"{section}.{key}"].widget.toolTip()
            assert tip, f"{section}.{key} has no tooltip"
            if info.description:
                assert tip == info.description, f"{section}.{key}"
            else:
                assert tip.startswith(f"{key} (")
            walked += 1
    assert walked == sum(len(fields[s].annotation.model_fields) for s in ("market", "frictions", "solver",
                                                                            "run"))
    header = win.form.agents.table.horizontalHeaderItem
    agent_fields = {info.alias or name: info for name, info in Agent.model_fields.items()}
    for column, key in enumerate(("name", "gamma", "xi", "lambda")):
        tip = header(column).toolTip()
        description = agent_fields[key].description
        assert tip == description if description else tip == f"{key} (str)"


def test_actions_are_enabled_only_when_they_can_act(win, oracle_result):
    actions, results = win.actions_, win.results
    for name in ("export", "save_plots", "gap"):
        assert not actions[name].isEnabled(), name
    assert not results.export_button.isEnabled() and not results.png_button.isEnabled()
    assert not results.gap_button.isEnabled() and not win.controls.stop_button.isEnabled()
    assert actions["run"].isEnabled() and actions["open_result"].isEnabled()
    show(win, oracle_result)
    for name in ("export", "save_plots", "gap", "run", "open_result"):
        assert actions[name].isEnabled(), name
    assert results.export_button.isEnabled() and results.gap_button.isEnabled()
    win.form.editors["market.alpha"].set_text("-1")
    assert win.form.validate() is None
    assert not actions["run"].isEnabled() and not actions["save_scenario"].isEnabled()


def test_every_file_action_reports_its_real_outcome(win, oracle_result, tmp_path):
    show(win, oracle_result)
    missing = tmp_path / "no such folder"
    results = win.results
    assert not results.save_plots(missing / "plots.png")
    assert "does not exist" in results.error.text() and not results.message.text()
    assert not (missing / "plots.png").exists()
    assert not results.export(missing / "result.h5") and "export failed" in results.error.text()
    assert not win.form.save_file(missing / "s.toml")
    message = win.form.general_error.text()
    assert "could not save" in message and "does not exist" in message
    assert results.save_plots(tmp_path / "plots.png") and results.error.isHidden()
    assert results.message.text() == f"saved plots to {tmp_path / 'plots.png'}"
    image = QImage(str(tmp_path / "plots.png"))
    width, height = plots.EXPORT_SIZE
    # the plots alone, three to a row under a header: no agent picker, no buttons
    assert image.width() == 3 * width and image.height() > 3 * height
    assert any("saved plots" in line for line in win.log.lines())


def test_edits_are_not_lost_without_asking(win, answers, quickstart_path, qtbot):
    form = win.form
    editor = form.editors["frictions.lambda"].widget
    editor.selectAll()
    qtbot.keyClicks(editor, "0.02")  # typed, as a user does
    assert form.modified and win.windowTitle().endswith("*") and "modified" in form.file_label.text()
    answers.reply = False
    other = form.shipped.findText("e2") if form.shipped.findText("e2") > 0 else 1
    form.shipped.setCurrentIndex(other)
    form.shipped.activated.emit(other)
    assert answers.asked == ["Discard edits?"] and editor.text() == "0.02"
    assert form.shipped.currentText() == "quickstart"  # the selector says what the form holds
    win.results.choose_result_file = lambda: pytest.fail("the file dialog opened without asking")
    win.results.open_dialog()
    assert answers.asked[-1] == "Discard edits?"
    assert not win.close() and win.isVisible()  # quitting asks too
    answers.reply = True
    form.shipped.activated.emit(other)
    assert not form.modified and form.shipped.currentIndex() == other and editor.text() != "0.02"


def test_feedback_follows_the_state(win, oracle_result, tmp_path):
    form = win.form
    form.editors["market.alpha"].set_text("-1")
    form.validate()
    assert "has errors" in form.file_label.text()
    form.editors["market.alpha"].set_text("1")
    form.validate()
    assert "has errors" not in form.file_label.text()
    show(win, oracle_result)
    assert win.results.export(tmp_path / "r.h5") and win.results.message.text().startswith("wrote")
    win.results.show_result(oracle_result, [])
    assert win.results.message.text() == ""  # no stale "wrote ..." beside another result
    title = win.results.title.text()
    assert "q = 2.0" in title and "lambda = 0.01" in title and "seed" in title  # the run's parameters
    assert win.results.differs.isHidden()
    form.editors["frictions.lambda"].set_text("0.03")
    form.validate()
    assert not win.results.differs.isHidden()


def test_metric_rows_name_the_agents_and_drop_zero_errors():
    rows = [("J/1", "-0.5 ± 0.01", "-0.49 ± 0"), ("S0", "1.02 ± 0", "1.02"), ("J/9", "1", "")]
    assert display_rows(rows, ["cautious"]) == [("J 1: cautious", "-0.5 ± 0.01", "-0.49"),
                                                 ("S0", "1.02", "1.02"), ("J/9", "1", "")]


def test_theme_and_window_size_are_remembered(qtbot, quickstart_path):
    first = build_window(str(quickstart_path), "dark")
    qtbot.addWidget(first)
    first.show()
    first.theme_actions["light"].trigger()  # chosen in the View menu
    first.resize(780, 610)  # the offscreen screen is 800 x 800
    QApplication.processEvents()
    size = (first.width(), first.height())
    assert size != (760, 736)  # not the size it opens at without a saved one
    first.close()
    again = build_window(str(quickstart_path))
    qtbot.addWidget(again)
    assert again.plots.theme.name == "light" and again.height() == size[1]
    assert abs(again.width() - min(size[0], 800)) <= 4  # restored, kept on the screen
    again.set_theme("dark")


def test_menus_shortcuts_and_narrow_layout(win):
    actions = win.actions_
    assert QKeySequence("Ctrl+S") in actions["save_scenario"].shortcuts()
    assert QKeySequence("Ctrl+R") in actions["run"].shortcuts()
    titles = [a.text() for a in win.menuBar().actions()]
    assert "&Help" in titles and "&Run" in titles
    win.resize(1280, 720)
    QApplication.processEvents()
    assert win.plots.tabs is not None and win.plots.tabs.count() == 6  # plots, results, runs, log in tabs
    win.resize(1920, 1080)
    QApplication.processEvents()
    assert win.plots.tabs is None and win.side.count() == 3
