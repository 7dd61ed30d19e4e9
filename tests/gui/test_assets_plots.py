"""Several assets in the desktop app: the asset selector and what each plot draws of the chosen asset, the
overlay of another several-asset result, the form holding matrices, and the per-asset metric names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import marketeq
from gui.plots import PlotsPanel
from gui.results_panel import display_rows
from gui.run_model import Curves, RunModel
from gui.scenario_form import ScenarioForm

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def scenario(name: str) -> marketeq.Scenario:
    return marketeq.load_scenario(SCENARIOS / f"{name}.toml").replace(**{"run.test_paths": 40,
                                                                         "market.steps": 30})


@pytest.fixture(scope="module")
def three() -> marketeq.RunResult:
    return marketeq.oracle_result(scenario("assets_3_quadratic"))


def data(panel: PlotsPanel, key: str) -> np.ndarray:
    return panel.curves[key].getData()[1]


def shown(panel: PlotsPanel, result: marketeq.RunResult) -> RunModel:
    model = RunModel()
    model.load_result(result)
    panel.refresh(model, force=True)
    return model


def test_curves_of_one_asset_and_entry(three):
    p = three.paths
    curves = Curves.from_paths(p)
    assert curves.n_assets == 3
    one = curves.asset(1, (0, 2))
    np.testing.assert_array_equal(one.sigma, p.sigma.mean(0)[:, 0, 2])
    np.testing.assert_array_equal(one.mu_mean, p.mu.mean(0)[:, 1])
    np.testing.assert_array_equal(one.phi_path, p.phi[0, :, :, 1])
    np.testing.assert_array_equal(curves.sigma_diagonal()[:, 2], p.sigma.mean(0)[:, 2, 2])
    assert curves.asset(7, (9, 9)).mu_mean is not None  # beyond this run's assets: its last one


def test_the_selector_picks_what_every_plot_draws(panel, three):
    p = three.paths
    model = shown(panel, three)
    selector = panel.asset_selector
    assert selector.n_assets == 3 and not selector.isHidden()
    diagonal = sorted(k for k in panel.curves if k.startswith("sigma:diagonal"))
    assert diagonal == [f"sigma:diagonal {i}" for i in range(3)]
    np.testing.assert_allclose(data(panel, "sigma:diagonal 1"), p.sigma.mean(0)[:, 1, 1])
    np.testing.assert_allclose(data(panel, "sigma:learned"), p.sigma.mean(0)[:, 0, 0])
    selector.select(2, (1, 0))
    panel.refresh(model, force=True)
    np.testing.assert_allclose(data(panel, "sigma:learned"), p.sigma.mean(0)[:, 1, 0])
    np.testing.assert_allclose(data(panel, "mu_mean:learned"), p.mu.mean(0)[:, 2])
    np.testing.assert_allclose(data(panel, "S_path:learned"), p.S[0, :, 2])
    np.testing.assert_allclose(data(panel, "holdings:agent 0:learned"), p.phi[0, :, 0, 2])
    np.testing.assert_allclose(data(panel, "rates:agent 1:learned"), p.phidot[0, :, 1, 2])
    assert "asset 3" in panel.plots["mu_mean"].getPlotItem().titleLabel.text
    assert "Σ<sub>21</sub>" in panel.plots["sigma"].getPlotItem().titleLabel.text


def test_one_asset_hides_the_selector_and_the_diagonal(panel, three, quickstart):
    shown(panel, three)
    one = marketeq.oracle_result(quickstart.replace(**{"run.test_paths": 40}))
    shown(panel, one)
    assert panel.asset_selector.isHidden() and not any(k.startswith("sigma:diagonal") for k in panel.curves)
    np.testing.assert_allclose(data(panel, "sigma:learned"), one.paths.sigma.mean(0))
    assert "asset" not in panel.plots["mu_mean"].getPlotItem().titleLabel.text


def test_an_overlaid_result_follows_the_selection(panel, three):
    free = marketeq.oracle_result(scenario("assets_3_quadratic"), "frictionless")
    shown(panel, three)
    panel.set_overlays([("frictionless", Curves.from_paths(free.paths))])
    panel.asset_selector.select(1, (1, 1))
    overlay = data(panel, "overlay:mu_mean:0")
    np.testing.assert_allclose(overlay, free.paths.mu.mean(0)[:, 1])
    np.testing.assert_allclose(data(panel, "overlay:sigma:0"), np.full(31, 0.9))  # frictionless: A_22


def test_the_form_holds_a_several_asset_scenario(qtbot):
    form = ScenarioForm()
    qtbot.addWidget(form)
    s = marketeq.load_scenario(SCENARIOS / "assets_2_separable.toml")
    form.set_scenario(s)
    assert form.editors["market.alpha"].widget.text() == "[[1.0, 0.0], [0.0, 0.6]]"
    assert form.editors["market.beta"].widget.text() == "[2.0, 1.0]"
    assert form.validate() == s
    form.editors["market.alpha"].set_text("[[1.0, 0.0], [2.0, 0.0]]")
    assert form.validate() is None and "singular" in form.error_text("market.alpha")


def test_per_asset_metrics_are_named_after_the_asset():
    rows = [("S0/2", "0.3", ""), ("mu0/1", "0.1", ""), ("J/1", "-1", "")]
    assert [r[0] for r in display_rows(rows, ["cautious"])] == ["S0 asset 2", "mu0 asset 1", "J 1: cautious"]


def test_the_estimate_line_says_what_runs_for_several_assets():
    from gui.estimate import estimate_text

    text = estimate_text(scenario("assets_3_quadratic"))
    assert text.startswith("3 assets, quadratic costs:") and "GiB" not in text
    refused = estimate_text(scenario("assets_3_power"))
    assert refused.startswith("cannot run: frictions.q = 1.5") and "market.assets = 3" in refused
    assert "GiB" in estimate_text(marketeq.load_scenario(SCENARIOS / "quickstart.toml"))


def test_run_is_offered_for_quadratic_costs_and_not_for_power_costs_on_several_assets(qtbot):
    from gui.app import build_window

    window = build_window(str(SCENARIOS / "assets_3_power.toml"))
    qtbot.addWidget(window)
    controls = window.controls
    assert window.form.scenario is not None  # a valid scenario, which the engine would refuse
    assert not controls.run_button.isEnabled() and not window.actions_["run"].isEnabled()
    assert controls.run_button.toolTip().startswith("frictions.q = 1.5")
    assert not window.start_run() and not window.runner.running
    window.form.set_scenario(scenario("assets_3_quadratic"))
    assert controls.run_button.isEnabled() and window.actions_["run"].isEnabled()
    assert controls.run_button.toolTip() == ""


def test_a_several_asset_run_goes_through_the_app_to_its_result(qtbot):
    from PySide6.QtCore import QEventLoop, QTimer

    from gui.app import build_window

    window = build_window(str(SCENARIOS / "assets_2_separable.toml"))
    qtbot.addWidget(window)
    window.form.set_scenario(scenario("assets_2_separable"))
    loop = QEventLoop()
    window.runner.stopped.connect(loop.quit)
    QTimer.singleShot(120_000, loop.quit)
    assert window.start_run()
    loop.exec()
    for _ in range(10):
        qtbot.wait(10)
    result = window.results.result
    assert window.model.status == "completed", window.model.message
    assert result is not None and result.paths.sigma.shape == (40, 31, 2, 2)
    assert result.metrics["convergence/converged"].value == 1.0 and result.oracle_name == "riccati"
    assert result.metrics["oracle/sigma_sup_rel_error"].value < 5e-3
    assert window.controls.run_button.isEnabled()
