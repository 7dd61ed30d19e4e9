"""The plots as one PNG: each plot laid out at a fixed size, three to a row, under a header."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

# The panel is gui.plots.PlotsPanel, which imports this module: named, not imported (no cycle, not even one
# for type checking; tests/test_layers.py counts those too).
PlotsPanel = Any
EXPORT_SIZE = (640, 420)  # pixels per plot in an exported PNG


def render_image(plots: PlotsPanel, keys: list[str], header: list[str], columns: int = 3) -> QImage:
    """The plots ``keys`` alone (no widgets), three to a row, under a header of title and parameter lines."""
    width, height = EXPORT_SIZE
    line = 26
    top = 16 + line * len(header)
    rows = -(-len(keys) // columns)
    image = QImage(width * columns, top + height * rows, QImage.Format.Format_ARGB32)
    image.fill(QColor(plots.theme.plot_background))
    painter = QPainter(image)
    painter.setPen(QColor(plots.theme.plot_foreground))
    for i, text in enumerate(header):
        font = QFont(plots.font())
        font.setPointSizeF(13 if i == 0 else 10)
        font.setBold(i == 0)
        painter.setFont(font)
        painter.drawText(QRectF(12, 8 + i * line, image.width() - 24, line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
    for i, key in enumerate(keys):
        cell = QRectF(width * (i % columns), top + height * (i // columns), width, height)
        _render_plot(plots, painter, key, cell)
    painter.end()
    return image


def _render_plot(plots: PlotsPanel, painter: QPainter, key: str, cell: QRectF) -> None:
    """Paint one plot laid out at the cell's size, whatever its size on screen (a plot in a hidden tab
    has never been laid out); its on-screen layout is put back afterwards."""
    item = plots.plots[key].getPlotItem()
    old = item.geometry()
    item.setGeometry(QRectF(0, 0, cell.width(), cell.height()))
    item.layout.activate()
    painter.fillRect(cell, QColor(plots.theme.plot_background))
    item.scene().render(painter, cell, item.sceneBoundingRect())
    item.setGeometry(old)
    item.layout.activate()

