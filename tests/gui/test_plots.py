"""The live plots: data from the run model, NaN safety, log axes, agent picking, themes, PNG export."""

from __future__ import annotations

import dataclasses

import numpy as np

import marketeq
from gui.plots import PANELS, PlotsPanel, positive
from gui.run_model import RunModel
from gui.theme import THEMES

K, N = 20, 4
NAMES = ("a", "b", "c", "d")


def curve_data(panel: PlotsPanel, key: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = panel.curves[key].getData()
    return (np.zeros(0), np.zeros(0)) if x is None else (x, y)


def feed(model: RunModel, steps: int, nan_every: int = 7) -> None:
    t = np.linspace(0, 0.2, K + 1)
    model.apply(marketeq.RunStarted("s", "rlink", 1, steps, N, NAMES))
    model.apply(marketeq.PhaseStarted(0, "agents", steps))
    for step in range(1, steps + 1):
        loss = np.nan if step % nan_every == 0 else (-1.0) ** step / step  # NaN and negative values
        model.apply(marketeq.IterationEnded(0, "agents", step - 1, step,
                                            {"agents/loss": loss, "market/link": 0.0}, 0.01 * step))
        if step % 5 == 0:
            sigma = 1 + 0.1 * t
            sigma[3] = np.nan  # a diverging evaluation must not break the plot
            model.apply(marketeq.Snapshot(step, t, sigma, 0.5 + t, 0.4 + t, t, np.ones((K + 1, N)) * step,
                                          np.zeros((K + 1, N)), {"eval/clearing": 1e-3 / step,
                                                                 "eval/terminal": 0.0}))


def test_positive_turns_non_positive_values_into_gaps():
    out = positive(np.array([1.0, -2.0, 0.0, np.nan, np.inf]))
    assert out[0] == 1.0 and out[1] == 2.0 and np.isnan(out[2:]).all()


def test_refresh_draws_every_plot_from_the_model(panel):
    model = RunModel()
    feed(model, 40)
    assert panel.refresh(model, force=True)
    x, y = curve_data(panel, "sigma:learned")
    assert len(x) == K + 1 and np.isnan(y[3]) and panel.curves["sigma:learned"].opts["connect"] == "finite"
    assert len(curve_data(panel, "losses:agents/loss")[0]) == 40
    assert "losses:market/link" in panel.curves  # all zeros: drawn as gaps on the log axis
    assert len(curve_data(panel, "errors:clearing (shares²/year²)")[0]) == 8
    assert panel.plots["losses"].getPlotItem().ctrl.logYCheck.isChecked()
    for plot in ("rates", "holdings"):
        assert len(curve_data(panel, f"{plot}:agent 0:learned")[0]) == K + 1
    assert not panel.refresh(model)  # nothing new: nothing drawn


def flat_paths() -> marketeq.Paths:
    """Two reference paths with sigma = mu = 1 and no trading."""
    return marketeq.Paths(t=np.linspace(0, 0.2, K + 1), W=np.zeros((2, K + 1)), dW=np.zeros((2, K)),
                          phi=np.zeros((2, K + 1, N)), phidot=np.zeros((2, K + 1, N)), mu=np.ones((2, K + 1)),
                          sigma=np.ones((2, K + 1)), S=np.zeros((2, K + 1)))


def test_oracle_overlay_gets_its_name_in_the_legend(panel):
    model = RunModel()
    feed(model, 10)
    paths = flat_paths()
    model.set_oracle("riccati", paths)
    panel.refresh(model, force=True)
    assert len(curve_data(panel, "sigma:oracle")[0]) == K + 1
    assert panel.curves["sigma:oracle"].name() == "oracle (riccati)"
    assert len(curve_data(panel, "rates:agent 1:oracle")[0]) == K + 1


def test_leading_order_is_drawn_beside_the_reference_for_its_scenario_only(panel):
    model = RunModel()
    feed(model, 10)
    paths = flat_paths()
    model.set_oracle("pde", paths)
    model.set_approximation("scenario A", "leading-order", dataclasses.replace(paths, sigma=np.full((2, K + 1), 1.1)))
    panel.refresh(model, force=True)
    legend = [label.text for _, label in panel.plots["sigma"].getPlotItem().legend.items]
    assert "oracle (pde)" in legend and "leading-order (dash-dot)" in legend
    assert np.allclose(curve_data(panel, "sigma:approximation")[1], 1.1)
    assert np.allclose(curve_data(panel, "sigma:oracle")[1], 1.0)
    model.apply(marketeq.RunStarted("s", "rlink", 1, 10, N, NAMES))  # the run of that scenario starts
    assert model.approximation is not None
    model.set_approximation(None, None, None)
    panel.refresh(model, force=True)
    legend = [label.text for _, label in panel.plots["sigma"].getPlotItem().legend.items]
    assert len(curve_data(panel, "sigma:approximation")[0]) == 0 and "leading-order (dash-dot)" not in legend


def test_refresh_is_bounded_per_tick(panel):
    model = RunModel()
    feed(model, 10)
    panel.refresh(model)
    drawn = 0
    while panel.refresh(model):
        drawn += 1
    assert 1 <= drawn <= len(PANELS)  # the backlog drains over a few ticks, a few plots at a time


def test_agents_can_be_picked(panel):
    model = RunModel()
    feed(model, 10)
    panel.refresh(model, force=True)
    assert panel.selected_agents() == [0, 1, 2, 3]
    panel.select_agents([2])
    panel.refresh(model, force=True)
    assert panel.selected_agents() == [2]
    assert "rates:agent 2:learned" in panel.curves and "rates:agent 0:learned" not in panel.curves
    legend = [label.text for _, label in panel.plots["rates"].getPlotItem().legend.items]
    assert legend == ["c", "oracle (dashed)"]


def test_themes_and_png_export(panel, tmp_path):
    model = RunModel()
    feed(model, 10)
    for name in ("light", "dark"):
        panel.apply_theme(THEMES[name])
        panel.refresh(model, force=True)
        assert panel.plots["sigma"].backgroundBrush().color().name() == THEMES[name].plot_background
    path = tmp_path / "plots.png"
    assert panel.save_png(str(path)) and path.stat().st_size > 10_000


def test_legend_labels_follow_the_theme(panel):
    for name in ("light", "dark"):
        panel.apply_theme(THEMES[name])
        for plot in ("sigma", "rates"):
            for _sample, label in panel.plots[plot].getPlotItem().legend.items:
                assert THEMES[name].plot_foreground.lstrip("#") in label.item.toHtml().lower()
