"""The message log: every event, warning and error since the app started, with times; copyable."""

from __future__ import annotations

import logging
import time

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

import marketeq

MAX_LINES = 20_000  # older lines are dropped beyond this


def describe(event: object) -> str | None:
    """One log line for a solver event (``None`` for per-iteration events, which the plots show)."""
    if isinstance(event, marketeq.IterationEnded):
        return None
    if isinstance(event, marketeq.Snapshot):
        metrics = ", ".join(f"{k.removeprefix('eval/')} {v:.3g}" for k, v in event.metrics.items())
        return f"step {event.step}: {metrics}"
    if isinstance(event, marketeq.RunStarted):
        return (f"run started: {event.scenario_name}, {event.rounds} rounds, {event.total_iterations} "
                "iterations")
    if isinstance(event, marketeq.PhaseStarted):
        return f"round {event.round + 1}: {event.phase} phase, {event.iterations} iterations"
    if isinstance(event, marketeq.PhaseEnded):
        losses = ", ".join(f"{k} {v:.3g}" for k, v in event.losses.items())
        return f"round {event.round + 1}: {event.phase} phase ended" + (f" ({losses})" if losses else "")
    if isinstance(event, marketeq.RunEnded):
        return f"training ended: {event.status} at step {event.step}" + (
            f": {event.message}" if event.message else "")
    name = type(event).__name__  # a kind this version does not know: shown as it comes
    fields = getattr(event, "__dict__", {}) or {}
    return f"{name}: " + ", ".join(f"{k} {v}" for k, v in fields.items())


class LogPane(QWidget):
    """A read-only, selectable text pane, a Copy all button and a logging handler feeding it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        copy, clear = QPushButton("Copy all"), QPushButton("Clear")
        copy.clicked.connect(self.copy_all)
        clear.clicked.connect(self.text.clear)
        row = QHBoxLayout()
        row.addWidget(copy)
        row.addWidget(clear)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.text)
        layout.addLayout(row)
        self.handler = _Handler(self)

    def log(self, message: str, level: str = "info") -> None:
        prefix = "" if level == "info" else f"{level.upper()}: "
        self.text.appendPlainText(f"{time.strftime('%H:%M:%S')}  {prefix}{message}")

    def log_event(self, event: object) -> None:
        line = describe(event)
        if line is not None:
            self.log(line, "warning" if isinstance(event, marketeq.RolledBack) else "info")

    def lines(self) -> list[str]:
        return self.text.toPlainText().splitlines()

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())


class _Handler(logging.Handler):
    """Warnings and errors logged by the app and the engine, into the pane."""

    def __init__(self, pane: LogPane) -> None:
        super().__init__(logging.WARNING)
        self.pane = pane

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pane.log(record.getMessage(), record.levelname.lower())
        except RuntimeError:  # the pane was deleted while the logger lives on
            logging.getLogger().removeHandler(self)
