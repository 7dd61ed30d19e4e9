"""A thousand agents: the scenario form's agents table, the agent picker and the plots stay fast, and the rates
and holdings plots draw the chosen agents only."""

from __future__ import annotations

import time

import numpy as np
import pytest

import marketeq
from gui.agent_picker import MAX_DEFAULT_AGENTS
from gui.plots import PlotsPanel
from gui.run_model import RunModel
from gui.scenario_form import ScenarioForm
from gui.theme import THEMES

N, K = 1000, 50
# generous on a loaded 2-core machine; measured 0.29-0.34 s (table), 0.15-0.54 s (picker and first draw), 0.17-0.23 s
# (redraw of three chosen agents), offscreen
TABLE_S, PICKER_S, DRAW_S = 5.0, 2.0, 2.0


@pytest.fixture(scope="module")
def population(quickstart_path) -> marketeq.Scenario:
    text = quickstart_path.read_text(encoding="utf-8")
    head, _, rest = text.partition("[[agents]]")
    toml = head + (f'[[populations]]\nname = "agent"\ncount = {N}\ngamma_range = [1.0, 3.0]\nxi_sd = 10.0\n'
                   'xi_rule = "centred"\nseed = 1\n\n') + rest[rest.index("[run]"):]
    return marketeq.load_scenario("", text=toml)


def snapshot(step: int) -> marketeq.Snapshot:
    t = np.linspace(0.0, 0.2, K + 1)
    ramp = np.arange(N)[None, :] + t[:, None]  # agent i: holdings i + t, rates -(i + t)
    return marketeq.Snapshot(step, t, 1 + 0.1 * t, 0.5 + t, 0.4 + t, t, ramp, -ramp)


def rate_curves(panel: PlotsPanel) -> dict[tuple[int, str], np.ndarray]:
    """The agents' curves in the rates plot that hold data, by (agent, role)."""
    out = {}
    for (plot, i, role), curve in panel._agent_curves.items():  # noqa: SLF001 - what is actually drawn
        x, y = curve.getData()
        if plot == "rates" and x is not None and len(x):
            out[(i, role)] = y
    return out


def test_a_thousand_agents_fill_the_table_fast_and_validate(qtbot, population):
    form = ScenarioForm()
    qtbot.addWidget(form)
    started = time.perf_counter()
    form.set_scenario(population)
    elapsed = time.perf_counter() - started
    assert form.agents.table.rowCount() == N
    assert form.scenario is not None and form.scenario.n_agents == N  # the table's rows validate back
    assert elapsed < TABLE_S, f"{elapsed:.2f} s to fill and validate the agents table"


def test_the_picker_builds_fast_and_the_plots_draw_the_chosen_agents_only(qtbot, population):
    panel = PlotsPanel(THEMES["dark"])
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    model = RunModel()
    names = tuple(population.agent_names)
    started = time.perf_counter()
    model.apply(marketeq.RunStarted(population.name, "rlink", 1, 10, N, names))
    model.apply(snapshot(5))
    panel.refresh(model, force=True)
    first = time.perf_counter() - started
    assert panel.agent_picker.list.count() == N
    assert first < PICKER_S, f"{first:.2f} s to offer {N} agents and draw"
    drawn = rate_curves(panel)
    assert sorted(drawn) == sorted((i, "learned") for i in range(MAX_DEFAULT_AGENTS))
    chosen = [3, 500, 999]
    started = time.perf_counter()
    panel.select_agents(chosen)
    model.apply(snapshot(10))
    panel.refresh(model, force=True)
    redraw = time.perf_counter() - started
    drawn = rate_curves(panel)
    assert sorted(drawn) == sorted((i, "learned") for i in chosen)
    for i in chosen:  # each curve is that agent's, not another column of the snapshot
        assert np.allclose(drawn[(i, "learned")], -(i + np.linspace(0.0, 0.2, K + 1)))
    items = panel.plots["rates"].getPlotItem().listDataItems()
    assert len(items) <= 2 * len(chosen) + 1  # learned + oracle per chosen agent, one legend entry for all
    assert redraw < DRAW_S, f"{redraw:.2f} s to redraw {len(chosen)} chosen agents"
