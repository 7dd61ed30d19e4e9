"""Which asset the plots of a several-asset run draw, and which entry of its volatility matrix.

Hidden for one asset. The sigma plot draws every diagonal entry sigma_ii (thin) and the chosen entry
sigma_ij (thick); the return, price, holdings and rates plots draw the chosen asset.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QVBoxLayout, QWidget

from gui.field_editors import QuietComboBox

PER_ASSET = ("sigma", "mu_mean", "mu_path", "S_path", "rates", "holdings")  # plots that follow the selection


class AssetSelector(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.n_assets = 1
        self.asset_box, self.entry_box = QuietComboBox(), QuietComboBox()
        self.asset_box.setToolTip("the asset whose return, price, holdings and rates are drawn")
        self.entry_box.setToolTip("the entry of the volatility matrix Σ_t drawn thick: row = asset, "
                                  "column = Brownian factor (the diagonal entries are drawn thin)")
        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 0)
        form.addRow("asset", self.asset_box)
        form.addRow("σ entry", self.entry_box)
        self.asset_box.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.entry_box.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.hide()

    def set_assets(self, d: int) -> bool:
        """Offer d assets (hidden for one); False when that is already what is offered."""
        if d == self.n_assets:
            return False
        self.n_assets = d
        for box in (self.asset_box, self.entry_box):
            box.blockSignals(True)
            box.clear()
        for i in range(d):
            self.asset_box.addItem(f"asset {i + 1}", i)
            for j in range(d):
                self.entry_box.addItem(f"σ{i + 1}{j + 1}" if d < 10 else f"σ{i + 1},{j + 1}", (i, j))
        for box in (self.asset_box, self.entry_box):
            box.blockSignals(False)
        self.setVisible(d > 1)
        return True

    @property
    def asset(self) -> int:
        return max(self.asset_box.currentIndex(), 0)

    @property
    def entry(self) -> tuple[int, int]:
        data = self.entry_box.currentData()
        return (0, 0) if data is None else tuple(data)

    def select(self, asset: int, entry: tuple[int, int] | None = None) -> None:
        """Choose an asset and optionally an entry (what a user does; used by tests too)."""
        self.asset_box.setCurrentIndex(asset)
        if entry is not None:
            self.entry_box.setCurrentIndex(entry[0] * self.n_assets + entry[1])

    def beside(self, other: QWidget) -> QWidget:
        """A widget with this selector above ``other`` (the agent picker)."""
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self)
        layout.addWidget(other)
        return box

    def title(self, key: str, title: str) -> str:
        """A plot's title, saying which asset or entry it draws when there are several assets."""
        if self.n_assets == 1 or key not in PER_ASSET:
            return title
        i, j = self.entry
        return (f"Volatility Σ<sub>{i + 1}{j + 1}</sub> (thick), Σ<sub>ii</sub> (thin)"
                if key == "sigma" else f"{title}, asset {self.asset + 1}")
