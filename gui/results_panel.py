"""The metrics table of a finished, stopped or opened run; Export HDF5, Save plots, Open .h5, the gap."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import marketeq
from gui import dialogs
from gui.estimate import scenario_summary
from gui.field_editors import error_label

NO_RESULT = "No result yet: press Run, or open a .h5 file."
# RunResult fields the header already shows or that are bulky; any other field (a convergence report, say)
# is shown as it comes, so that new information appears without a change here
SHOWN_FIELDS = {"scenario", "scenario_toml", "solver", "status", "provenance", "history", "paths", "metrics",
                "oracle_name", "oracle_paths", "oracle_metrics", "weights", "message", "wall_time_s"}  # the table


def result_title(result: marketeq.RunResult) -> str:
    """The same heading the CLI prints above its table."""
    p = result.provenance
    wall = f"{result.wall_time_s:.1f} s" if math.isfinite(result.wall_time_s) else "time unknown"
    return (f"{result.scenario.name}: {result.solver}, {result.status}, {wall}, {p.get('device', '?')}, "
            f"{p.get('dtype', '?')}, seed {p.get('seed', '?')}")


def extra_lines(result: marketeq.RunResult) -> list[str]:
    """``name: value`` for the result's fields beyond the known ones (e.g. what the solver's stopping rule
    achieved), shortened to a line each."""
    lines = []
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        if field.name in SHOWN_FIELDS or value is None or value == {} or value == "":
            continue
        text = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()) \
            if isinstance(value, dict) else str(value)
        lines.append(f"{field.name}: {text[:200]}")
    return lines


ASSET_METRICS = ("S0", "mu0")  # per asset with several assets (marketeq.metrics_assets), not per agent


def display_rows(rows: list[tuple[str, ...]], agent_names: list[str]) -> list[tuple[str, ...]]:
    """The CLI's rows as the app shows them: ``J/2`` named after agent 2, several assets' ``S0/2`` after
    asset 2, no "± 0" on exact values."""
    def name(metric: str) -> str:
        match = re.fullmatch(r"(\w+)/(\d+)", metric)
        if match and match.group(1) in ASSET_METRICS:
            return f"{match.group(1)} asset {match.group(2)}"
        if match and 1 <= int(match.group(2)) <= len(agent_names):
            return f"{match.group(1)} {match.group(2)}: {agent_names[int(match.group(2)) - 1]}"
        return metric

    def value(text: str) -> str:
        return re.sub(r" ± 0$", "", text)

    return [(name(row[0]), *(value(v) for v in row[1:])) for row in rows]


class ResultsPanel(QWidget):
    """Shows one result; exporting and opening go through the engine's HDF5 reader and writer."""

    result_opened = Signal(object, object)  # RunResult, metric rows
    gap_requested = Signal()
    notice = Signal(str)  # the outcome of a file action, for the message log

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: marketeq.RunResult | None = None
        self.png_writer: Callable[[str, list[str]], bool] | None = None  # set by the window
        self.may_replace: Callable[[], bool] = lambda: True  # asks before an opened file replaces edits
        self.title = QLabel(NO_RESULT)
        self.title.setWordWrap(True)
        self.differs = QLabel("The form differs from the shown run (edited after it was run).")
        self.differs.setWordWrap(True)
        self.differs.setStyleSheet("color: #e5a50a;")
        self.differs.hide()
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["metric", "solver", "oracle"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.verticalHeader().hide()
        font = self.table.font()
        font.setPointSizeF(font.pointSizeF() * 0.92)
        self.table.setFont(font)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.export_button = QPushButton("Export HDF5…")
        self.png_button = QPushButton("Save plots as PNG…")
        self.open_button = QPushButton("Open .h5…")
        self.gap_button = QPushButton("Equilibrium gap")
        self.gap_button.setToolTip("train each agent's best response to the shown result's market and add "
                                   "what it would gain (marketeq gap) to the table")
        self.gap_progress = QProgressBar()
        self.gap_progress.hide()
        self.export_button.clicked.connect(self.export_dialog)
        self.png_button.clicked.connect(self.png_dialog)
        self.open_button.clicked.connect(self.open_dialog)
        self.gap_button.clicked.connect(self.gap_requested)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.error = error_label()
        buttons = QGridLayout()
        buttons.addWidget(self.export_button, 0, 0)
        buttons.addWidget(self.open_button, 0, 1)
        buttons.addWidget(self.png_button, 1, 0)
        buttons.addWidget(self.gap_button, 1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.differs)
        layout.addWidget(self.table, stretch=1)
        layout.addLayout(buttons)
        layout.addWidget(self.gap_progress)
        layout.addWidget(self.message)
        layout.addWidget(self.error)
        self.show_result(None, [])

    def show_result(self, result: marketeq.RunResult | None, rows: list[tuple[str, str, str]]) -> None:
        self.result = result
        self.set_enabled(busy=False)
        self.error.hide()
        self.message.clear()  # an earlier "wrote ..." is about an earlier result
        self.differs.hide()
        if result is None:
            self.title.setText(NO_RESULT)
        else:
            lines = [result_title(result), scenario_summary(result.scenario), *extra_lines(result)]
            self.title.setText("\n".join(lines + ([result.message] if result.message else [])))
        oracle = f"oracle ({result.oracle_name})" if result is not None and result.oracle_name else "oracle"
        self.table.setHorizontalHeaderLabels(["metric", result.solver if result else "solver", oracle])
        names = list(result.scenario.agent_names) if result is not None else []
        self._fill(display_rows(rows, names))

    def _fill(self, rows: list[tuple[str, ...]]) -> None:
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))

    def add_gap(self, report) -> None:  # noqa: ANN001 - marketeq.gap.GapReport
        """Append the equilibrium gap: per agent what a best response gains, then the total."""
        rows = self.rows()
        rows = [r for r in rows if not r[0].startswith("gap")]
        for name, gap, se in zip(report.agents, report.gap, report.gap_se, strict=True):
            rows.append((f"gap: {name}", f"{gap:.4g} ± {se:.2g}", ""))
        rows.append(("gap: total / gain", f"{report.total_gap:.4g} / {report.total_gain:.4g} "
                                          f"({100 * report.ratio:.2g}%)", ""))
        self._fill(rows)
        self.message.setText(f"gap: {report.iterations} best-response iterations, {report.training}, "
                             f"{report.wall_time_s:.1f} s")
        self.notice.emit(f"equilibrium gap: total {report.total_gap:.4g} ± {report.total_gap_se:.2g}")

    def set_enabled(self, busy: bool) -> None:
        """Actions only when they can act: a result to export, plot or gap, and no job in progress."""
        has = self.result is not None
        self.export_button.setEnabled(has)
        self.png_button.setEnabled(has)
        self.gap_button.setEnabled(has and not busy and self.result.paths is not None)
        self.open_button.setEnabled(not busy)

    def set_differs(self, differs: bool) -> None:
        self.differs.setVisible(differs and self.result is not None)

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.item(r, c).text() if self.table.item(r, c) else "" for c in range(3))
                for r in range(self.table.rowCount())]

    def _fail(self, text: str) -> None:
        self.message.clear()
        self.error.setText(text)
        self.error.show()
        self.notice.emit(f"error: {text}")

    def _done(self, text: str) -> None:
        self.error.hide()
        self.message.setText(text)
        self.notice.emit(text)

    # --- files ---------------------------------------------------------------------------------------
    def export(self, path: str | Path) -> bool:
        """Write the shown result with the engine's HDF5 writer."""
        if self.result is None:
            self._fail("nothing to export yet")
            return False
        try:
            marketeq.write_result(self.result, path)
        except (OSError, marketeq.ResultFileError) as exc:
            self._fail(f"export failed: {exc}")
            return False
        self._done(f"wrote {path}")
        return True

    def open_file(self, path: str | Path) -> marketeq.RunResult | None:
        """Read a result file and show it (no training); the engine's one-line message on a bad file."""
        try:
            result = marketeq.read_result(path)
            rows = marketeq.metric_rows(marketeq.with_oracle_metrics(result))
        except (OSError, marketeq.ResultFileError) as exc:
            self._fail(str(exc))
            return None
        self.show_result(result, rows)
        self._done(f"opened {path}")
        self.result_opened.emit(result, rows)
        return result

    def save_plots(self, path: str | Path) -> bool:
        """Write the plots with the result's title and parameters; says what really happened."""
        if self.result is None or self.png_writer is None:
            self._fail("no result to plot yet")
            return False
        why = dialogs.writable_folder_error(path)
        header = [result_title(self.result), scenario_summary(self.result.scenario)]
        if why or not self.png_writer(str(path), header):
            self._fail(f"could not save plots to {path}: {why or 'the image could not be written'}")
            return False
        self._done(f"saved plots to {path}")
        return True

    def export_dialog(self) -> None:
        if self.result is None:
            return
        start = Path(dialogs.start_dir("result", dialogs.results_dir())) / f"{self.result.scenario.name}.h5"
        path, _ = QFileDialog.getSaveFileName(self, "Export result", str(start), "HDF5 (*.h5)")
        if path:
            dialogs.remember_dir("result", path)
            self.export(path if path.endswith(".h5") else path + ".h5")

    def choose_result_file(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "Open result", dialogs.start_dir("result",
                                              dialogs.results_dir()), "HDF5 (*.h5 *.hdf5)")
        if path:
            dialogs.remember_dir("result", path)
        return path

    def open_dialog(self) -> None:
        if self.open_button.isEnabled() and self.may_replace():
            path = self.choose_result_file()
            if path:
                self.open_file(path)

    def png_dialog(self) -> None:
        if self.result is None:
            return
        start = Path(dialogs.start_dir("plots", dialogs.results_dir())) / f"{self.result.scenario.name}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save plots", str(start), "PNG image (*.png)")
        if path:
            dialogs.remember_dir("plots", path)
            self.save_plots(path if path.endswith(".png") else path + ".png")
