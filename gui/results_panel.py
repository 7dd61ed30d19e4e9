"""The metrics table of a finished, stopped or opened run; Export HDF5, Save plots, Open .h5."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import marketeq
from gui.field_editors import error_label


def result_title(result: marketeq.RunResult) -> str:
    """The same heading the CLI prints above its table."""
    p = result.provenance
    wall = f"{result.wall_time_s:.1f} s" if math.isfinite(result.wall_time_s) else "time unknown"
    return (f"{result.scenario.name}: {result.solver}, {result.status}, {wall}, {p.get('device', '?')}, "
            f"{p.get('dtype', '?')}, seed {p.get('seed', '?')}")


class ResultsPanel(QWidget):
    """Shows one result; exporting and opening go through the engine's HDF5 reader and writer."""

    result_opened = Signal(object, object)  # RunResult, metric rows
    save_plots_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: marketeq.RunResult | None = None
        self.title = QLabel("No result yet: press Run, or open a .h5 file.")
        self.title.setWordWrap(True)
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
        self.export_button.clicked.connect(self.export_dialog)
        self.png_button.clicked.connect(self.png_dialog)
        self.open_button.clicked.connect(self.open_dialog)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.error = error_label()
        buttons = QGridLayout()
        buttons.addWidget(self.export_button, 0, 0)
        buttons.addWidget(self.open_button, 0, 1)
        buttons.addWidget(self.png_button, 1, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.table, stretch=1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(self.error)
        self.show_result(None, [])

    def show_result(self, result: marketeq.RunResult | None, rows: list[tuple[str, str, str]]) -> None:
        self.result = result
        self.export_button.setEnabled(result is not None)
        self.error.hide()
        if result is None:
            self.title.setText("No result yet: press Run, or open a .h5 file.")
        else:
            self.title.setText(result_title(result) + (f"\n{result.message}" if result.message else ""))
        oracle = f"oracle ({result.oracle_name})" if result is not None and result.oracle_name else "oracle"
        self.table.setHorizontalHeaderLabels(["metric", result.solver if result else "solver", oracle])
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.item(r, c).text() for c in range(3)) for r in range(self.table.rowCount())]

    def _fail(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

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
        self.error.hide()
        self.message.setText(f"wrote {path}")
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
        self.message.setText(f"opened {path}")
        self.result_opened.emit(result, rows)
        return result

    def export_dialog(self) -> None:
        name = f"{self.result.scenario.name}.h5" if self.result else "result.h5"
        start = str(Path("results") / name)
        path, _ = QFileDialog.getSaveFileName(self, "Export result", start, "HDF5 (*.h5)")
        if path:
            self.export(path if path.endswith(".h5") else path + ".h5")

    def open_dialog(self) -> None:
        if not self.open_button.isEnabled():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open result", "results", "HDF5 (*.h5 *.hdf5)")
        if path:
            self.open_file(path)

    def png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save plots", "plots.png", "PNG image (*.png)")
        if path:
            self.save_plots_requested.emit(path if path.endswith(".png") else path + ".png")
            self.message.setText(f"saved plots to {path}")
