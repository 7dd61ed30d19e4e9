"""The agents as an editable table: name, gamma, xi and an optional own lambda; add and remove rows."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.field_editors import error_label, field_tooltip, parse_scalar, show_value
from marketeq.scenario import Agent

COLUMNS = ("name", "gamma", "xi", "lambda")  # an empty lambda means frictions.lambda
ERROR_BRUSH = QBrush(QColor(229, 72, 77, 90))


class AgentsTable(QWidget):
    """Rows are agents; cells are text, parsed into numbers for the engine to validate."""

    edited = Signal()
    user_edited = Signal()  # a cell typed, an agent added or removed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        fields = {info.alias or name: info for name, info in Agent.model_fields.items()}
        for column, key in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(column).setToolTip(field_tooltip(key, fields[key]))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setMinimumHeight(150)
        self.table.itemChanged.connect(lambda _item: (self.edited.emit(), self.user_edited.emit()))
        self.add_button, self.remove_button = QPushButton("Add agent"), QPushButton("Remove selected")
        self.add_button.clicked.connect(lambda: (self.add_agent(), self.user_edited.emit()))
        self.remove_button.clicked.connect(lambda: (self.remove_selected(), self.user_edited.emit()))
        self.error = error_label()
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.error)

    def set_agents(self, agents: list[dict[str, Any]]) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for agent in agents:
            self._append(agent if isinstance(agent, dict) else {})
        self.table.blockSignals(False)
        self.edited.emit()

    def _append(self, agent: dict[str, Any]) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, key in enumerate(COLUMNS):
            self.table.setItem(row, column, QTableWidgetItem(show_value(agent.get(key))))

    def add_agent(self, name: str | None = None, gamma: float = 1.0, xi: float = 0.0) -> None:
        self.table.blockSignals(True)
        self._append({"name": name or f"agent {self.table.rowCount() + 1}", "gamma": gamma, "xi": xi})
        self.table.blockSignals(False)
        self.edited.emit()

    def remove_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        for row in rows or [self.table.rowCount() - 1]:
            if row >= 0:
                self.table.removeRow(row)
        self.edited.emit()

    def set_cell(self, row: int, key: str, text: str) -> None:
        """Type into a cell (what a user does; used by tests too)."""
        self.table.item(row, COLUMNS.index(key)).setText(text)

    def agents(self) -> list[dict[str, Any]]:
        """Rows as TOML tables; an empty name is left out, numbers are parsed."""
        out = []
        for row in range(self.table.rowCount()):
            cells = {key: (self.table.item(row, c).text() if self.table.item(row, c) else "")
                     for c, key in enumerate(COLUMNS)}
            agent: dict[str, Any] = {"gamma": parse_scalar(cells["gamma"]), "xi": parse_scalar(cells["xi"])}
            if cells["lambda"].strip():
                agent["lambda"] = parse_scalar(cells["lambda"])
            if cells["name"].strip():
                agent["name"] = cells["name"].strip()
            out.append(agent)
        return out

    def set_error(self, message: str, field: str | None) -> None:
        """Show the engine's message under the table and tint the cell it names (``agents[1].gamma``)."""
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self.table.blockSignals(True)
        for row in range(self.table.rowCount()):
            for column in range(len(COLUMNS)):
                item = self.table.item(row, column)
                if item is not None:
                    item.setBackground(QBrush())
        target = _cell(field) if field else None
        if target and target[0] < self.table.rowCount() and self.table.item(*target):
            self.table.item(*target).setBackground(ERROR_BRUSH)
        self.table.blockSignals(False)


def _cell(field: str) -> tuple[int, int] | None:
    """``agents[1].gamma`` -> (1, 1)."""
    if not field.startswith("agents[") or "]" not in field:
        return None
    index, _, rest = field[len("agents["):].partition("]")
    key = rest.lstrip(".")
    if not index.isdigit() or key not in COLUMNS:
        return None
    return int(index), COLUMNS.index(key)
