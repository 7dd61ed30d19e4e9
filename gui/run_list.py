"""The runs of this session and the opened result files: check one to overlay it on the plots, double-click
to show it. The legend names each overlaid run by the parameters where it differs from the shown run."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

import marketeq
from gui.estimate import differing, scenario_summary
from gui.run_model import Curves


@dataclass
class RunEntry:
    number: int
    result: marketeq.RunResult
    rows: list
    source: str  # "run" or the file it was opened from
    when: str
    curves: Curves | None

    @property
    def title(self) -> str:
        origin = "" if self.source == "run" else f", {self.source}"
        return f"#{self.number} {self.result.scenario.name}: {self.result.status}, {self.when}{origin}"


class RunList(QWidget):
    overlay_changed = Signal()
    show_requested = Signal(object)  # RunEntry

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[RunEntry] = []
        self.list = QListWidget()
        self.list.itemChanged.connect(lambda _item: self.overlay_changed.emit())
        self.list.itemDoubleClicked.connect(lambda item: self.show_requested.emit(self._entry(item)))
        hint = QLabel("Check runs to overlay their σ and mean μ (dotted); double-click one to show it.")
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(hint)
        layout.addWidget(self.list)

    def add(self, result: marketeq.RunResult, rows: list, source: str = "run") -> RunEntry:
        curves = Curves.from_paths(result.paths) if result.paths is not None else None
        entry = RunEntry(len(self.entries) + 1, result, rows, source, time.strftime("%H:%M:%S"), curves)
        self.entries.append(entry)
        item = QListWidgetItem(entry.title)
        item.setData(Qt.ItemDataRole.UserRole, entry.number)
        flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
        item.setFlags(flags if curves is not None else flags & ~Qt.ItemFlag.ItemIsEnabled)
        item.setCheckState(Qt.CheckState.Unchecked)
        item.setToolTip(scenario_summary(result.scenario))
        self.list.blockSignals(True)
        self.list.addItem(item)
        self.list.blockSignals(False)
        return entry

    def _entry(self, item: QListWidgetItem) -> RunEntry:
        return self.entries[int(item.data(Qt.ItemDataRole.UserRole)) - 1]

    def set_checked(self, number: int, checked: bool = True) -> None:
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        self.list.item(number - 1).setCheckState(state)

    def checked(self) -> list[RunEntry]:
        items = (self.list.item(i) for i in range(self.list.count()))
        return [self._entry(item) for item in items if item.checkState() == Qt.CheckState.Checked]

    def overlays(self, shown: marketeq.RunResult | None, shown_scenario: marketeq.Scenario | None
                 ) -> list[tuple[str, Curves]]:
        """(legend label, curves) of the checked runs other than the one shown."""
        out = []
        for entry in self.checked():
            if entry.result is shown or entry.curves is None:
                continue
            diff = differing(entry.result.scenario, shown_scenario) if shown_scenario is not None else []
            out.append((f"#{entry.number} " + (", ".join(diff) if diff else "same parameters"), entry.curves))
        return out
