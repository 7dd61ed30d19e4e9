"""Run, Pause/Resume and Stop buttons with a progress bar (round, phase, iteration, ETA)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QWidget,
)

from gui.run_model import RunModel

PROGRESS_SCALE = 1000


class RunControls(QWidget):
    """Buttons emit requests; :meth:`refresh` mirrors the run model and whether a worker is alive."""

    run_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        icon = self.style().standardIcon
        self.run_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPlay), "Run")
        self.pause_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaPause), "Pause")
        self.stop_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaStop), "Stop")
        self._icons = {False: self.pause_button.icon(), True: self.run_button.icon()}
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_SCALE)
        self.progress.setTextVisible(True)
        self.progress.setFormat("ready")
        self.progress.setMinimumWidth(200)
        # one line each, elided to the width; the whole text is in the tooltip and the message log
        self.status = ElidedLabel()
        self.estimate = ElidedLabel()
        layout = QGridLayout(self)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setVerticalSpacing(2)
        for column, button in enumerate((self.run_button, self.pause_button, self.stop_button)):
            layout.addWidget(button, 0, column)
        layout.addWidget(self.progress, 0, 3)
        line = QHBoxLayout()
        line.addWidget(self.estimate, stretch=2)
        line.addWidget(self.status, stretch=3)
        layout.addLayout(line, 1, 0, 1, 4)
        layout.setColumnStretch(3, 1)
        self.run_button.clicked.connect(self.run_requested)
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self.stop_requested)
        self._paused = False
        self.set_state(running=False, valid=True)

    def _toggle_pause(self) -> None:
        (self.resume_requested if self._paused else self.pause_requested).emit()

    def set_state(self, running: bool, valid: bool, paused: bool = False, refusal: str | None = None) -> None:
        """Enable what makes sense: Run when idle with a valid scenario the engine runs (``refusal``: why it
        would not), Pause and Stop while running."""
        self._paused = paused
        self.run_button.setEnabled(valid and refusal is None and not running)
        self.run_button.setToolTip("fix the scenario's errors first" if not valid else refusal or "")
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setIcon(self._icons[paused])
        self.stop_button.setEnabled(running)

    def refresh(self, model: RunModel) -> None:
        self.progress.setValue(int(round(model.fraction * PROGRESS_SCALE)))
        self.progress.setFormat(model.progress_text())
        self.status.setText(model.message)
        self.status.setVisible(bool(model.message))  # an empty status leaves its room to the estimate


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with "…" to fit, the full text in its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        if text != self.full:
            self.full = text
            self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self.full

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics = QFontMetrics(self.font())
        shown = metrics.elidedText(self.full, Qt.TextElideMode.ElideRight, max(self.width(), 40))
        super().setText(shown)
