"""A checkable list of agents: which ones the rates and holdings plots draw."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MAX_DEFAULT_AGENTS = 6  # checked when a scenario's agents are first shown


class AgentPicker(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.names: tuple[str, ...] = ()
        self.list = QListWidget()
        self.list.itemChanged.connect(lambda _item: self.changed.emit())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        label = QLabel("Agents drawn in the rates and holdings plots:")
        label.setWordWrap(True)
        layout.addWidget(label)
        self.setMinimumWidth(140)
        layout.addWidget(self.list)
        row = QHBoxLayout()
        for text, pick in (("All", lambda: range(self.list.count())), ("None", lambda: [])):
            button = QPushButton(text)
            button.clicked.connect(lambda _checked=False, pick=pick: self.select(list(pick())))
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)

    def set_names(self, names: tuple[str, ...]) -> bool:
        """Offer these agents, the first few checked; False when they are the ones already offered."""
        if tuple(names) == self.names:
            return False
        self.names = tuple(names)
        self.list.blockSignals(True)
        self.list.clear()
        for i, name in enumerate(names):
            item = QListWidgetItem(f"{i + 1}: {name}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if i < MAX_DEFAULT_AGENTS else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        return True

    def selected(self) -> list[int]:
        checked = Qt.CheckState.Checked
        return [i for i in range(self.list.count()) if self.list.item(i).checkState() == checked]

    def select(self, indices: list[int]) -> None:
        chosen = set(indices)
        self.list.blockSignals(True)  # one change signal, not one per agent
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(Qt.CheckState.Checked if i in chosen else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self.changed.emit()
