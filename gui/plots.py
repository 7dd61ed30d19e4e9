"""Live pyqtgraph panels drawn from a :class:`~gui.run_model.RunModel`.

:meth:`PlotsPanel.refresh` is called by the main window's ~10 Hz timer and redraws only the plots whose
data moved in the model, a bounded number per call, so the drawing rate is bounded however fast the solver
reports and one tick never repaints the whole grid. Every curve is drawn with
``connect="finite"``: NaN (a loss a phase did not report, a diverged value) breaks the line instead of
breaking the plot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QTabWidget, QVBoxLayout, QWidget

from gui.agent_picker import AgentPicker
from gui.asset_selector import PER_ASSET, AssetSelector
from gui.plot_export import EXPORT_SIZE, render_image
from gui.run_model import Curves, RunModel
from gui.theme import THEMES, Theme

# Repainting one plot costs ~5 ms offscreen on this class of machine (measured; twice that under load):
# a snapshot dirties seven plots, so each tick redraws at most this many and the rest on the next ticks.
PLOTS_PER_TICK = 1


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    x: tuple[str, str]  # label, units
    y: tuple[str, str]
    log_y: bool = False
    legend: tuple[int, int] = (-4, 4)  # pyqtgraph offset: >0 from left/top, <0 from right/bottom


# Legends sit where these curves usually leave room: sigma and mean mu fall towards maturity, rates and
# holdings fan out from t = 0, losses and errors fall with training (legends can be dragged).
BOTTOM_LEFT, TOP_LEFT, BOTTOM_RIGHT = (6, -4), (6, 4), (-4, -4)


T_AXIS = ("time t", "years")
PANELS = (
    Panel("sigma", "Volatility σ<sub>t</sub> (mean over paths)", T_AXIS, ("σ<sub>t</sub>", "price/√year"),
          legend=BOTTOM_LEFT),
    Panel("mu_mean", "Expected return: mean of μ<sub>t</sub>", T_AXIS, ("E[μ<sub>t</sub>]", "price/year"),
          legend=BOTTOM_LEFT),
    Panel("mu_path", "Sample path: expected return μ<sub>t</sub>", T_AXIS, ("μ<sub>t</sub>", "price/year")),
    Panel("S_path", "Sample path: price S<sub>t</sub>", T_AXIS, ("S<sub>t</sub>", "price")),
    Panel("rates", "Sample path: trading rates dφ<sub>t</sub>/dt", T_AXIS,
          ("dφ<sub>t</sub>/dt", "shares/year"), legend=TOP_LEFT),
    Panel("holdings", "Sample path: holdings φ<sub>t</sub>", T_AXIS, ("φ<sub>t</sub>", "shares"),
          legend=TOP_LEFT),
    Panel("losses", "Training losses per player", ("training iteration", ""), ("|loss|", "objective units"),
          log_y=True, legend=BOTTOM_RIGHT),
    Panel("errors", "Clearing and terminal errors (test paths)", ("training iteration", ""),
          ("error", "see legend"), log_y=True, legend=BOTTOM_RIGHT),
)
MARKET_CURVES = ("sigma", "mu_mean", "mu_path", "S_path")
OVERLAID = ("sigma", "mu_mean")  # other runs' curves: path means, comparable whatever the paths
# Narrow windows show the plots in tabs of a few plots each; wide ones in one grid of three columns.
PAGES = (("Market", ("sigma", "mu_mean", "mu_path", "S_path"), 2),
         ("Agents", ("rates", "holdings", "picker"), 3),
         ("Training", ("losses", "errors"), 2))
ERROR_LABELS = {"eval/clearing": "clearing (shares²/year²)", "eval/terminal": "terminal (price²)",
                "eval/sigma_error": "σ sup rel. error vs oracle"}


def is_loss_key(key: str) -> bool:
    """The per-player losses the CLI's progress bar shows too: total loss, link and terminal terms."""
    return key.startswith(("agents/", "market/")) and key.endswith(("loss", "link", "terminal"))


def positive(y: np.ndarray) -> np.ndarray:
    """Values for a log axis: non-positive and non-finite entries become NaN (gaps)."""
    y = np.abs(np.asarray(y, dtype=float))
    return np.where(np.isfinite(y) & (y > 0), y, np.nan)


def log_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, |y|) for a log axis; empty when nothing is drawable (pyqtgraph warns on all-NaN data)."""
    y = positive(y)
    return (x, y) if np.isfinite(y).any() else (np.zeros(0), np.zeros(0))


class PlotsPanel(QWidget):
    """Eight plots in a grid, plus the list of agents whose rates and holdings are drawn."""

    def __init__(self, theme: Theme = THEMES["dark"], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.agent_picker = AgentPicker()
        self.agent_picker.changed.connect(self._rebuild_agent_curves)
        self.asset_selector = AssetSelector()
        self.asset_selector.changed.connect(self._asset_changed)
        self.side = self.asset_selector.beside(self.agent_picker)  # the picker's cell
        self._agent_curves: dict[tuple[str, int, str], pg.PlotDataItem] = {}
        self._overlays: list[tuple[str, Curves]] = []
        self._drawn = (-1, -1)  # the model's (curves_version, losses_version) last seen
        self._dirty: dict[str, None] = {}  # plots to redraw, oldest first (a re-dirtied plot keeps its place)
        for panel in PANELS:
            self._make_plot(panel)
        for key in MARKET_CURVES:
            self._curve(key, "learned", "learned")
            self._curve(key, "oracle", "oracle")
            self._curve(key, None, "approximation", key=f"{key}:approximation")  # named once it has data
        self.tabs: QTabWidget | None = None  # the narrow arrangement
        self.wide: bool | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.arrange(wide=True)
        self.apply_theme(theme)

    # --- arrangement ---------------------------------------------------------------------------------
    def arrange(self, wide: bool, extra_tabs: tuple[tuple[str, QWidget], ...] = ()) -> None:
        """One grid of three columns (wide), or tabs of a few plots each plus ``extra_tabs`` (narrow)."""
        if wide == self.wide:
            return
        self.wide = wide
        layout = self.layout()
        old = layout.takeAt(0)
        if wide:
            container = QWidget()
            grid = self._grid(container)
            for i, key in enumerate([p.key for p in PANELS] + ["picker"]):
                grid.addWidget(self._widget(key), i // 3, i % 3)
            self.tabs = None
        else:
            container = self.tabs = QTabWidget()
            for title, keys, columns in PAGES:
                page = QWidget()
                grid = self._grid(page)
                for i, key in enumerate(keys):
                    grid.addWidget(self._widget(key), i // columns, i % columns)
                if "picker" in keys:
                    grid.setColumnStretch(2, 0)
                    grid.setColumnStretch(0, 1)
                    grid.setColumnStretch(1, 1)
                container.addTab(page, title)
            for title, widget in extra_tabs:
                container.addTab(widget, title)
        layout.addWidget(container)
        if old is not None and old.widget() is not None:
            old.widget().deleteLater()

    @staticmethod
    def _grid(parent: QWidget) -> QGridLayout:
        grid = QGridLayout(parent)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        return grid

    def _widget(self, key: str) -> QWidget:
        return self.side if key == "picker" else self.plots[key]

    # --- construction --------------------------------------------------------------------------------
    def _make_plot(self, panel: Panel) -> pg.PlotWidget:
        widget = pg.PlotWidget()
        widget.setMinimumSize(200, 150)
        item = widget.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.22)
        item.addLegend(offset=panel.legend, labelTextSize="8pt", verSpacing=-8)
        item.setLogMode(y=panel.log_y)
        for side in ("bottom", "left"):
            item.getAxis(side).enableAutoSIPrefix(False)
            # major ticks only: the grid lines of minor ticks made up most of the paint time (measured 3x)
            item.getAxis(side).setStyle(maxTickLevel=0)
        self.plots[panel.key] = widget
        return widget

    def _curve(self, plot: str, name: str | None, role: str, color: str | None = None,
               symbol: str | None = None, key: str | None = None) -> pg.PlotDataItem:
        """A curve of ``plot``; a ``name`` puts it in the legend; ``role`` learned, oracle or faint."""
        key = key or f"{plot}:{name}"
        curve = pg.PlotDataItem(name=name, connect="finite", symbol=symbol, symbolSize=5)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        curve.role, curve.color = role, color  # for re-styling on a theme change
        self.plots[plot].getPlotItem().addItem(curve)
        self._style(curve)
        self.curves[key] = curve
        return curve

    def _style(self, curve: pg.PlotDataItem) -> None:
        t = self.theme
        color = curve.color or {"oracle": t.oracle, "approximation": t.muted}.get(curve.role, t.learned)
        style = {"oracle": Qt.PenStyle.DashLine, "overlay": Qt.PenStyle.DotLine,
                 "approximation": Qt.PenStyle.DashDotLine}.get(curve.role, Qt.PenStyle.SolidLine)
        width = 1.2 if curve.role == "faint" else 2
        curve.setPen(pg.mkPen(color, width=width, style=style))
        if curve.opts.get("symbol"):
            curve.setSymbolPen(pg.mkPen(color))
            curve.setSymbolBrush(pg.mkBrush(color))

    # --- agents --------------------------------------------------------------------------------------
    @property
    def agent_names(self) -> tuple[str, ...]:
        return self.agent_picker.names

    def set_agents(self, names: tuple[str, ...]) -> None:
        """Offer these agents in the picker; the first few are drawn."""
        if self.agent_picker.set_names(names):
            self._rebuild_agent_curves()

    def selected_agents(self) -> list[int]:
        return self.agent_picker.selected()

    def select_agents(self, indices: list[int]) -> None:
        self.agent_picker.select(indices)

    def _rebuild_agent_curves(self) -> None:
        self._agent_curves.clear()
        for plot in ("rates", "holdings"):
            for key in [k for k in self.curves if k.startswith(f"{plot}:")]:
                self.plots[plot].getPlotItem().removeItem(self.curves.pop(key))
            selected = self.selected_agents()
            for role in ("learned", "oracle"):
                if role == "oracle" and selected:  # one legend entry explains every dashed line
                    self._curve(plot, "oracle (dashed)", "oracle", self.theme.muted)
                for i in selected:
                    color = self.theme.series[i % len(self.theme.series)]
                    name = self.agent_names[i] if role == "learned" else None
                    self._agent_curves[(plot, i, role)] = self._curve(plot, name, role, color,
                                                                      key=f"{plot}:agent {i}:{role}")
        self._mark("rates", "holdings")

    # --- other runs ----------------------------------------------------------------------------------
    def set_overlays(self, runs: list[tuple[str, Curves]]) -> None:
        """Draw other runs' mean curves (dotted) beside the shown run, each labelled in the legend."""
        for key in [k for k in self.curves if k.startswith("overlay:")]:
            plot = key.split(":")[1]
            self.plots[plot].getPlotItem().removeItem(self.curves.pop(key))
        self._overlays = list(runs)
        for n, (label, curves) in enumerate(self._overlays):
            color = self.theme.series[(n + 3) % len(self.theme.series)]
            for plot in OVERLAID:
                curve = self._curve(plot, label, "overlay", color, key=f"overlay:{plot}:{n}")
                curve.setData(*self._market_xy(self._shown(curves), plot), connect="finite")

    @property
    def overlay_labels(self) -> list[str]:
        return [label for label, _curves in self._overlays]

    # --- drawing -------------------------------------------------------------------------------------
    def refresh(self, model: RunModel, force: bool = False) -> bool:
        """Redraw plots whose data changed since they were last drawn; True when something was drawn.

        While training that is the losses plot at most once a tick and the others once per snapshot,
        at most :data:`PLOTS_PER_TICK` per call so that one tick never paints the whole grid
        (``force`` draws everything now: for screenshots and theme changes).
        """
        if model.agent_names and model.agent_names != self.agent_names:
            self.set_agents(model.agent_names)
        shown = model.curves or model.oracle
        if self.asset_selector.set_assets(1 if shown is None else shown.n_assets):
            self._asset_changed()
        seen = (model.curves_version, model.losses_version)
        if force or seen[0] != self._drawn[0]:
            self._mark(*(p.key for p in PANELS if p.key != "losses"))
        if force or seen[1] != self._drawn[1]:
            self._mark("losses")
        self._drawn = seen
        todo = list(self._dirty)
        for key in todo if force else todo[:PLOTS_PER_TICK]:
            self._draw(key, model)
            # Fit the axes and the view transform now: done while painting (pyqtgraph's default), a range
            # change queues a second full paint of the plot (measured: 2 paints per update -> 1).
            view = self.plots[key].getPlotItem().getViewBox()
            view.updateAutoRange()
            view.updateMatrix()
            del self._dirty[key]
        return bool(todo)

    def _mark(self, *plots: str) -> None:
        for plot in plots:
            self._dirty.setdefault(plot)

    def _draw(self, plot: str, model: RunModel) -> None:
        if plot in MARKET_CURVES:
            label = f"oracle ({model.oracle_name})" if model.oracle_name else "oracle"
            self.curves[f"{plot}:learned"].setData(*self._market_xy(self._shown(model.curves), plot),
                                                   connect="finite")
            oracle = self.curves[f"{plot}:oracle"]
            oracle.setData(*self._market_xy(self._shown(model.oracle), plot), connect="finite")
            self._rename(plot, oracle, label)
            if plot == "sigma":
                self._draw_diagonal(model.curves or model.oracle)
            approximation = self.curves[f"{plot}:approximation"]
            approximation.setData(*self._market_xy(self._shown(model.approximation), plot), connect="finite")
            if model.approximation is not None:
                self._rename(plot, approximation, f"{model.approximation_name} (dash-dot)")
            elif approximation.name() is not None:  # out of the legend when there is none
                approximation.opts["name"] = None
                self.plots[plot].getPlotItem().legend.removeItem(approximation)
        elif plot in ("rates", "holdings"):
            for (key, i, role), curve in self._agent_curves.items():
                if key == plot:
                    curves = model.curves if role == "learned" else model.oracle
                    curve.setData(*self._agent_xy(self._shown(curves), plot, i), connect="finite")
        elif plot == "errors":
            for key in model.evals.keys():
                label = ERROR_LABELS.get(key, key)
                curve = self.curves.get(f"errors:{label}") or self._history_curve("errors", label, key, "o")
                curve.setData(*log_xy(model.evals.steps, model.evals.column(key)), connect="finite")
        else:
            columns = model.losses
            for key in filter(is_loss_key, columns.keys()):
                curve = self.curves.get(f"losses:{key}") or self._history_curve("losses", key, key)
                curve.setData(*log_xy(columns.steps, columns.column(key)), connect="finite")

    # --- several assets ------------------------------------------------------------------------------
    def _shown(self, curves: Curves | None) -> Curves | None:
        """What the plots draw of ``curves``: the selected asset and volatility entry (several assets)."""
        return None if curves is None else curves.asset(self.asset_selector.asset, self.asset_selector.entry)

    def _asset_changed(self) -> None:
        """Another asset or entry (or number of assets): the per-asset plots, titles and overlays follow."""
        self._titles()
        self._mark(*PER_ASSET)
        self.set_overlays(self._overlays)

    def _titles(self) -> None:
        for panel in PANELS:
            title = self.asset_selector.title(panel.key, panel.title)
            self.plots[panel.key].getPlotItem().setTitle(title, color=self.theme.plot_foreground, size="10pt")

    def _draw_diagonal(self, curves: Curves | None) -> None:
        """Thin curves of every diagonal entry sigma_ii of a several-asset run (none for one asset)."""
        d = 1 if curves is None else curves.n_assets
        self.plots["sigma"].getPlotItem().legend.setColumnCount(1 if d == 1 else 2)  # a shorter legend
        for key in [k for k in self.curves if k.startswith("sigma:diagonal")]:
            if int(key.rsplit(" ", 1)[1]) >= d or d == 1:
                self.plots["sigma"].getPlotItem().removeItem(self.curves.pop(key))
        if d == 1:
            return
        diagonal = curves.sigma_diagonal()
        for i in range(d):
            key = f"sigma:diagonal {i}"
            color = self.theme.series[(i + 1) % len(self.theme.series)]
            curve = self.curves.get(key) or self._curve("sigma", f"Σ{i + 1}{i + 1}", "faint", color, key=key)
            curve.setData(curves.t, diagonal[:, i], connect="finite")

    @staticmethod
    def _market_xy(curves, plot: str) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        if curves is None:
            return np.zeros(0), np.zeros(0)
        return curves.t, getattr(curves, plot)

    @staticmethod
    def _agent_xy(curves, plot: str, i: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        values = None if curves is None else (curves.phidot_path if plot == "rates" else curves.phi_path)
        if values is None or values.ndim != 2 or i >= values.shape[1]:
            return np.zeros(0), np.zeros(0)
        return curves.t, values[:, i]

    def _rename(self, plot: str, curve: pg.PlotDataItem, label: str) -> None:
        if curve.name() != label:
            curve.opts["name"] = label
            legend = self.plots[plot].getPlotItem().legend
            legend.removeItem(curve)
            legend.addItem(curve, label)

    def _history_curve(self, plot: str, label: str, key: str, symbol: str | None = None) -> pg.PlotDataItem:
        n = len([k for k in self.curves if k.startswith(f"{plot}:")])
        role = "faint" if key.endswith(("link", "terminal")) and plot == "losses" else "learned"
        return self._curve(plot, label, role, self.theme.series[n % len(self.theme.series)], symbol)

    # --- theme and export ----------------------------------------------------------------------------
    def apply_theme(self, theme: Theme) -> None:
        self.theme = theme
        fg = theme.plot_foreground
        for panel in PANELS:
            widget = self.plots[panel.key]
            widget.setBackground(theme.plot_background)
            item = widget.getPlotItem()
            for side, (text, units) in (("bottom", panel.x), ("left", panel.y)):
                axis = item.getAxis(side)
                axis.setPen(pg.mkPen(fg))
                axis.setTextPen(pg.mkPen(fg))
                axis.setLabel(text, units=units or None, color=fg)
            item.legend.setLabelTextColor(fg)
            for _sample, label in item.legend.items:  # pyqtgraph stores the colour but does not re-render
                label.setText(label.text)
            item.legend.setBrush(pg.mkBrush(theme.plot_background + "c8"))
            item.legend.setPen(pg.mkPen(None))
        self._titles()
        for curve in self.curves.values():
            self._style(curve)
        self._rebuild_agent_curves()
        self.set_overlays(self._overlays)  # in the new theme's colours

    def save_png(self, path: str, header: list[str] | None = None) -> bool:
        """Write every plot, with a header, as one PNG; False when the file could not be written."""
        return bool(render_image(self, [p.key for p in PANELS], header or []).save(str(path), "PNG"))
