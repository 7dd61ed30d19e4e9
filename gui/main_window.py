"""The main window: wiring only. Form -> runner -> run model -> plots, controls and results."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QSplitter, QVBoxLayout, QWidget

import marketeq
from gui.plots import PlotsPanel
from gui.results_panel import ResultsPanel
from gui.run_controls import RunControls
from gui.run_model import RunModel
from gui.scenario_form import ScenarioForm
from gui.theme import THEMES, palette
from gui.worker import SolverRunner

REFRESH_MS = 100  # plots and progress are redrawn at most 10 times a second


class MainWindow(QMainWindow):
    def __init__(self, theme: str = "dark") -> None:
        super().__init__()
        self.setWindowTitle(f"marketeq {marketeq.__version__}")
        self.model = RunModel()
        self.form = ScenarioForm()
        self.controls = RunControls()
        self.plots = PlotsPanel(THEMES[theme])
        self.results = ResultsPanel()
        self.runner = SolverRunner(self)
        self._layout()
        self._connect()
        self._menus()
        self.timer = QTimer(self, interval=REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.set_theme(theme)

    def _layout(self) -> None:
        center = QWidget()
        column = QVBoxLayout(center)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.controls)
        column.addWidget(self.plots, stretch=1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget, width in ((self.form, 360), (center, 1040), (self.results, 460)):
            splitter.addWidget(widget)
            widget.setMinimumWidth(min(width, 300))
        splitter.setSizes([360, 1040, 460])
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self.resize(1860, 1020)

    def _connect(self) -> None:
        self.controls.run_requested.connect(self.start_run)
        self.controls.pause_requested.connect(lambda: self._pause(True))
        self.controls.resume_requested.connect(lambda: self._pause(False))
        self.controls.stop_requested.connect(self.stop_run)
        self.form.validity_changed.connect(lambda _valid: self._update_buttons())
        self.form.changed.connect(self._scenario_edited)
        self.runner.event.connect(self.model.apply)
        self.runner.oracle_ready.connect(lambda o: self.model.set_oracle(*(o or (None, None))))
        self.runner.finished.connect(self._finished)
        self.runner.failed.connect(lambda message: self.model.set_status("failed", message))
        self.runner.stopped.connect(self._update_buttons)
        self.results.result_opened.connect(self._opened)
        self.results.save_plots_requested.connect(self.plots.save_png)

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        keys = QKeySequence.StandardKey
        for text, slot, key in (("Open scenario…", self.form.open_dialog, keys.Open),
                                ("Save scenario as…", self.form.save_dialog, keys.SaveAs),
                                ("Open result (.h5)…", self.results.open_dialog, None),
                                ("Export result (.h5)…", self.results.export_dialog, None),
                                ("Save plots as PNG…", self.results.png_dialog, None),
                                ("Quit", self.close, keys.Quit)):
            action = file_menu.addAction(text, slot)
            if key is not None:
                action.setShortcut(key)
        view = self.menuBar().addMenu("&View")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in THEMES:
            action = view.addAction(f"{name.capitalize()} theme", lambda n=name: self.set_theme(n))
            action.setCheckable(True)
            group.addAction(action)
            self.theme_actions[name] = action

    # --- runs ----------------------------------------------------------------------------------------
    def start_run(self) -> bool:
        scenario = self.form.validate()
        if scenario is None or self.runner.running:
            return False
        self.model.reset(scenario.name, tuple(scenario.agent_names))
        self.model.set_status("starting", "computing the oracle and building the networks")
        self.results.show_result(None, [])
        self.runner.start(scenario)
        self._update_buttons()
        return True

    def stop_run(self) -> None:
        self.runner.stop()
        self.model.set_status("stopping", "stopping after this iteration, then evaluating on the test set")
        self._update_buttons()

    def _pause(self, paused: bool) -> None:
        (self.runner.pause if paused else self.runner.resume)()
        self.model.set_status("paused" if paused else "running")
        self._update_buttons()

    def _finished(self, result: marketeq.RunResult, rows: list) -> None:
        self.model.load_result(result)
        self.results.show_result(result, rows)
        self.controls.refresh(self.model)

    def _opened(self, result: marketeq.RunResult, rows: list) -> None:
        self.model.load_result(result)
        self.form.set_scenario(result.scenario)
        self.refresh()

    def _scenario_edited(self) -> None:
        if self.form.scenario is not None and not self.model.agent_names:  # nothing shown yet
            self.plots.set_agents(tuple(self.form.scenario.agent_names))

    def _update_buttons(self) -> None:
        running = self.runner.running
        self.controls.set_state(running, self.form.scenario is not None, self.runner.paused)
        self.results.open_button.setEnabled(not running)  # the plots belong to the run until it ends
        self.controls.refresh(self.model)

    def refresh(self) -> None:
        """The ~10 Hz redraw: plots and progress from the run model."""
        self.plots.refresh(self.model)
        self.controls.refresh(self.model)

    # --- window --------------------------------------------------------------------------------------
    def open_scenario(self, path: str | Path) -> bool:
        return self.form.load_file(path)

    def set_theme(self, name: str) -> None:
        theme = THEMES[name]
        app = QApplication.instance()
        if app is not None:
            app.setPalette(palette(theme))
        self.plots.apply_theme(theme)
        self.theme_actions[name].setChecked(True)
        self.plots.refresh(self.model, force=True)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.runner.running:
            self.runner.stop()
            self.runner.wait()
        self.timer.stop()
        super().closeEvent(event)
