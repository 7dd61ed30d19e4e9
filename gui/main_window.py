"""The main window: wiring only. Form -> runner -> run model -> plots, controls, results, runs and log."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QGuiApplication, QResizeEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

import marketeq
from gui import dialogs
from gui.estimate import estimate_text, run_refusal
from gui.log_pane import LogPane
from gui.menus import build_menus
from gui.plots import PlotsPanel
from gui.results_panel import ResultsPanel
from gui.run_controls import RunControls
from gui.run_list import RunEntry, RunList
from gui.run_model import RunModel
from gui.scenario_form import ScenarioForm
from gui.theme import THEMES, palette
from gui.worker import SolverRunner

REFRESH_MS = 100  # plots and progress are redrawn at most 10 times a second
WIDE_PX = 1600  # below this width the plots go into tabs, with the results, runs and log beside them
DEFAULT_SIZE = (1860, 1020)
GAP_ITERATIONS = 200  # best-response training iterations of the gap button (marketeq gap's default)


class MainWindow(QMainWindow):
    def __init__(self, theme: str = "dark") -> None:
        super().__init__()
        self.model = RunModel()
        self.form = ScenarioForm()
        self.controls = RunControls()
        self.plots = PlotsPanel(THEMES[theme])
        self.results = ResultsPanel()
        self.runs = RunList()
        self.log = LogPane()
        self.runner = SolverRunner(self)
        self.gap_iterations = GAP_ITERATIONS
        self.seconds_per_iteration: float | None = None  # of the last run, for the time estimate
        self._build()
        self._connect()
        self.actions_ = build_menus(self)
        self.timer = QTimer(self, interval=REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.set_theme(theme, remember=False)
        self._update_buttons()
        self.log.log(f"marketeq {marketeq.__version__} started")

    # --- layout --------------------------------------------------------------------------------------
    def _build(self) -> None:
        center = QWidget()
        column = QVBoxLayout(center)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.controls)
        column.addWidget(self.plots, stretch=1)
        self.side = QTabWidget()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget in (self.form, center, self.side):
            self.splitter.addWidget(widget)
        self.form.setMinimumWidth(260)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.setCentralWidget(self.splitter)
        self._wide: bool | None = None
        self.arrange(True)

    def side_tabs(self) -> tuple[tuple[str, QWidget], ...]:
        return (("Results", self.results), ("Runs", self.runs), ("Log", self.log))

    def arrange(self, wide: bool) -> None:
        """Wide: form | controls and a grid of plots | results, runs, log. Narrow: form | everything else
        in tabs, so that no plot is squeezed below a readable size."""
        if wide == self._wide:
            return
        self._wide = wide
        if wide:
            self.plots.arrange(True)
            for title, widget in self.side_tabs():
                self.side.addTab(widget, title)
            self.side.show()
            total = max(self.width(), 1600)
            self.splitter.setSizes([int(0.19 * total), int(0.56 * total), int(0.25 * total)])
        else:
            self.plots.arrange(False, self.side_tabs())
            self.side.hide()
            self.splitter.setSizes([max(280, int(0.25 * self.width())), int(0.75 * self.width()), 0])

    def show_tab(self, widget: QWidget) -> None:
        tabs = self.side if self._wide else self.plots.tabs
        if tabs is not None:
            tabs.setCurrentWidget(widget)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.arrange(event.size().width() >= WIDE_PX)

    def fit_to_screen(self) -> None:
        """The saved size and place, or the default size shrunk to the screen, centred."""
        self.arrange(False)  # the narrow layout's smaller minimum size first; a wide size switches back
        saved = dialogs.settings().value("window/geometry")
        if isinstance(saved, QByteArray) and self.restoreGeometry(saved):
            return
        screen = QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(*DEFAULT_SIZE)
            return
        area = screen.availableGeometry()
        width, height = min(DEFAULT_SIZE[0], int(0.95 * area.width())), min(DEFAULT_SIZE[1],
                                                                             int(0.92 * area.height()))
        self.setGeometry(area.x() + (area.width() - width) // 2, area.y() + (area.height() - height) // 2,
                         width, height)

    # --- wiring --------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.controls.run_requested.connect(self.start_run)
        self.controls.pause_requested.connect(lambda: self._pause(True))
        self.controls.resume_requested.connect(lambda: self._pause(False))
        self.controls.stop_requested.connect(self.stop_run)
        self.form.validity_changed.connect(lambda _valid: self._update_buttons())
        self.form.changed.connect(self._scenario_edited)
        self.form.modified_changed.connect(lambda _m: self._update_title())
        self.form.notice.connect(self.log.log)
        self.runner.event.connect(self.model.apply)
        self.runner.event.connect(self.log.log_event)
        self.runner.oracle_ready.connect(self._oracle)
        self.runner.approximation_ready.connect(lambda payload: self.model.set_approximation(*payload))
        self.runner.finished.connect(self._finished)
        self.runner.failed.connect(self._failed)
        self.runner.stopped.connect(self._job_ended)
        self.runner.gap_progress.connect(self._gap_progress)
        self.runner.gap_ready.connect(self._gap_ready)
        self.results.result_opened.connect(self._opened)
        self.results.notice.connect(self.log.log)
        self.results.gap_requested.connect(self.start_gap)
        self.results.png_writer = self.plots.save_png
        self.results.may_replace = self.form.may_discard
        self.runs.overlay_changed.connect(self._overlay)
        self.runs.show_requested.connect(self._show_entry)

    # --- runs ----------------------------------------------------------------------------------------
    def start_run(self) -> bool:
        scenario = self.form.validate()
        if scenario is None or self.runner.running or run_refusal(scenario) is not None:
            return False
        self.model.reset(scenario.name, tuple(scenario.agent_names))
        self.model.set_status("starting", "computing the oracle and building the networks")
        self.results.show_result(None, [])
        self.form.set_locked(True)  # the form shows the scenario being run until the run ends
        self.runner.start(scenario)
        self.log.log(f"run of {scenario.name} started: {estimate_text(scenario)}")
        self._overlay()
        self._update_buttons()
        return True

    def stop_run(self) -> None:
        if not self.runner.running:
            return
        job = self.runner.job
        self.runner.stop()
        if job == "run":
            self.model.set_status("stopping",
                                  "stopping after this iteration, then evaluating on the test set")
        self._update_buttons()

    def toggle_pause(self) -> None:
        if self.runner.running and self.runner.job == "run":
            self._pause(not self.runner.paused)

    def _pause(self, paused: bool) -> None:
        (self.runner.pause if paused else self.runner.resume)()
        self.model.set_paused(paused)
        self.log.log("paused" if paused else "resumed")
        self._update_buttons()

    def _oracle(self, oracle: object) -> None:
        self.model.set_oracle(*(oracle or (None, None)))
        self.log.log(f"oracle: {oracle[0]}" if oracle else "no oracle for this scenario")

    def _finished(self, result: marketeq.RunResult, rows: list) -> None:
        if result.wall_time_s and self.model.step and math.isfinite(result.wall_time_s):
            self.seconds_per_iteration = result.wall_time_s / self.model.step
        self.model.load_result(result)
        self.results.show_result(result, rows)
        self.runs.add(result, rows)
        self.log.log(f"result: {result.solver}, {result.status}"
                     + (f": {result.message}" if result.message else "")
                     + f", {result.wall_time_s:.1f} s")
        self._overlay()
        self.controls.refresh(self.model)

    def _failed(self, message: str) -> None:
        if self.runner.job != "gap":
            self.model.set_status("failed", message)
        self.results.gap_progress.hide()
        self.log.log(message, "error")

    def _job_ended(self) -> None:
        self.form.set_locked(False)
        self.results.gap_progress.hide()
        self._scenario_edited()
        self._update_buttons()

    def start_gap(self) -> bool:
        result = self.results.result
        if result is None or result.paths is None or self.runner.running:
            return False
        self.runner.start_gap(result, self.gap_iterations)
        self.results.gap_progress.setRange(0, self.gap_iterations)
        self.results.gap_progress.setValue(0)
        self.results.gap_progress.setFormat("equilibrium gap: starting the solver process")
        self.results.gap_progress.show()
        self.log.log(f"equilibrium gap of {result.scenario.name} started ({self.gap_iterations} iterations)")
        self._update_buttons()
        return True

    def _gap_progress(self, done: int, total: int) -> None:
        self.results.gap_progress.setValue(done)
        self.results.gap_progress.setFormat(f"equilibrium gap: best responses, iteration {done}/{total}")

    def _gap_ready(self, report: object) -> None:
        self.results.add_gap(report)

    def _opened(self, result: marketeq.RunResult, rows: list) -> None:
        self.model.load_result(result)
        self.form.set_scenario(result.scenario)
        self.runs.add(result, rows, source=self.results.message.text().removeprefix("opened "))
        self._overlay()
        self.refresh()

    def _show_entry(self, entry: RunEntry) -> None:
        if self.runner.running or not self.form.may_discard():
            return
        self.model.load_result(entry.result)
        self.results.show_result(entry.result, entry.rows)
        self.form.set_scenario(entry.result.scenario)
        self._overlay()

    def _overlay(self) -> None:
        shown = self.results.result
        scenario = shown.scenario if shown is not None else self.form.scenario
        self.plots.set_overlays(self.runs.overlays(shown, scenario))

    def _scenario_edited(self) -> None:
        scenario = self.form.scenario
        if scenario is not None and not self.model.agent_names:  # nothing shown yet
            self.plots.set_agents(tuple(scenario.agent_names))
        shown = self.results.result
        self.results.set_differs(shown is not None and scenario != shown.scenario)
        self.controls.estimate.setText(estimate_text(scenario, self.seconds_per_iteration) if scenario
                                       else "fix the scenario's errors to see what a run needs")
        self._update_title()
        self._update_buttons()  # a valid edit may make a scenario the engine refuses (several assets)

    def _update_buttons(self) -> None:
        running, job = self.runner.running, self.runner.job
        scenario, result = self.form.scenario, self.results.result
        valid = scenario is not None
        refusal = run_refusal(scenario) if scenario is not None else None
        self.controls.set_state(running, valid, self.runner.paused, refusal)
        self.controls.pause_button.setEnabled(job == "run")
        self.results.set_enabled(busy=running)
        states = {"run": valid and refusal is None and not running, "pause": job == "run", "stop": running,
                  "gap": result is not None and result.paths is not None and not running,
                  "open_result": not running, "open_scenario": not running,
                  "export": result is not None, "save_plots": result is not None,
                  "save_scenario": valid, "save_scenario_as": valid}
        for name, enabled in states.items():
            self.actions_[name].setEnabled(enabled)
        self.controls.refresh(self.model)

    def _update_title(self) -> None:
        scenario = self.form.scenario
        name = scenario.name if scenario is not None else "scenario with errors"
        self.setWindowTitle(f"marketeq {marketeq.__version__} — {name}{' *' if self.form.modified else ''}")

    def refresh(self) -> None:
        """The ~10 Hz redraw: plots and progress from the run model."""
        self.plots.refresh(self.model)
        self.controls.refresh(self.model)

    # --- window --------------------------------------------------------------------------------------
    def open_scenario(self, path: str | Path) -> bool:
        return self.form.load_file(path)

    def set_theme(self, name: str, remember: bool = True) -> None:
        theme = THEMES[name]
        app = QApplication.instance()
        if app is not None:
            app.setPalette(palette(theme))
        self.plots.apply_theme(theme)
        self.theme_actions[name].setChecked(True)
        self.plots.refresh(self.model, force=True)
        if remember:
            dialogs.settings().setValue("window/theme", name)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.runner.running and not dialogs.ask(
                self, "Quit during a run?", f"A {self.runner.job} is in progress. Stop it and quit?",
                yes="Stop and quit"):
            event.ignore()
            return
        if not self.form.may_discard():
            event.ignore()
            return
        if self.runner.running:
            self.runner.stop()
            self.runner.wait()
        dialogs.settings().setValue("window/geometry", self.saveGeometry())
        self.timer.stop()
        super().closeEvent(event)
