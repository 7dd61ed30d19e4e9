"""Scenario files: the shipped ones load with model.md's numbers; every bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketeq.scenario import Scenario, ScenarioError, SolverSettings, scenario_to_toml
from marketeq.scenario_files import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))

E1_GAMMAS = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]
E1_XIS = [28.9, 14.9, 11.8, -14.0, -19.1, -27.0, 22.2, 31.5, -26.3, -22.9]

# A small valid scenario that every bad case below breaks in exactly one place.
BASE = """\
name = "base"

[market]
alpha = 1.0
beta = 2.0
supply = 1.0
horizon = 0.2
steps = 50

[frictions]
lambda = 1e-2
q = 2.0

[[agents]]
gamma = 2.0
xi = -6.0

[[agents]]
gamma = 1.5
xi = 2.0

[[agents]]
gamma = 1.0
xi = 4.0

[solver]
schedule = "rounds"
mu_mode = "learned"
rounds = 4
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def only_agents(*agents: tuple[float, float]) -> str:
    head = BASE[: BASE.index("[[agents]]")]
    tables = "".join(f"[[agents]]\ngamma = {g}\nxi = {x}\n\n" for g, x in agents)
    return head + tables + BASE[BASE.index("[solver]"):]


def load(name: str) -> Scenario:
    return load_scenario(SCENARIOS / name)


# --- shipped scenarios -----------------------------------------------------------------------------

def test_scenarios_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"quickstart.toml", "paper_e1_quadratic_10_agents.toml", "paper_e2_power_2_agents.toml",
            "paper_e3_power_10_agents.toml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_loads_and_round_trips(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    xis = np.array(scenario.xis)  # (N,), or (N, d, d) for several assets
    assert np.abs(xis.sum(0)).max() < 1e-9 * max(1.0, np.abs(xis).sum(0).max())
    again = load_scenario("round-trip.toml", text=scenario_to_toml(scenario))
    assert again == scenario


def test_e1_carries_the_model_md_parameters():
    e1 = load("paper_e1_quadratic_10_agents.toml")
    m = e1.market
    assert (m.alpha, m.beta, m.supply, m.horizon, m.steps) == (1.0, 2.0, 1.0, 0.2, 100)
    assert (e1.frictions.lam, e1.frictions.q) == (1e-2, 2.0)
    assert e1.gammas == E1_GAMMAS and e1.xis == E1_XIS
    assert e1.solver.adaptive and e1.solver.mu_source == "implied"  # no [solver] table: the defaults


def test_e2_carries_the_model_md_parameters():
    e2 = load("paper_e2_power_2_agents.toml")
    m = e2.market
    assert (m.alpha, m.beta, m.supply, m.horizon, m.steps) == (1.0, 2.0, 1.0, 0.4, 100)
    assert (e2.frictions.lam, e2.frictions.q) == (1e-2, 1.5)
    assert e2.gammas == [1.0, 2.0] and e2.xis == [3.0, -3.0]
    assert e2.solver.adaptive  # no [solver] table: the defaults


def test_e3_is_e1_with_power_cost():
    e1, e3 = load("paper_e1_quadratic_10_agents.toml"), load("paper_e3_power_10_agents.toml")
    assert e3.market == e1.market and e3.agents == e1.agents
    assert (e3.frictions.lam, e3.frictions.q) == (1e-2, 1.5)
    assert e3.gammas == E1_GAMMAS and e3.xis == E1_XIS
    assert e3.solver.mu_mode == "learned"
    same = {"frictions.q": 2.0, "name": e1.name, "description": e1.description, "solver": e1.solver}
    assert e3.replace(**same) == e1


# --- round trip, replace, schedule -----------------------------------------------------------------

def test_scenario_to_toml_round_trips_non_defaults():
    scenario = load_scenario("base.toml", text=BASE).replace(**{
        "agents[0].name": "cautious", "solver.agents_lr": [1e-2, 1e-3], "solver.warm_start": False,
        "run.dtype": "float64", "frictions.q": 1.5, "description": 'quotes " and\nnewlines',
    })
    text = scenario_to_toml(scenario)
    assert load_scenario("again.toml", text=text) == scenario


def test_replace_dotted_keys():
    base = load_scenario("base.toml", text=BASE)
    changed = base.replace(**{"run.seed": 3})
    assert changed.run.seed == 3 and base.run.seed == 0  # a copy; the original is frozen
    assert changed.replace(**{"run.seed": 0}) == base
    assert base.replace(**{"frictions.lambda": 0.5}).frictions.lam == 0.5
    assert base.replace(**{"frictions.lam": 0.5}).frictions.lam == 0.5
    assert base.replace(**{"agents[1].gamma": 3.0}).gammas == [2.0, 3.0, 1.0]
    assert base.replace(run=base.run.model_copy(update={"seed": 7})).run.seed == 7
    assert base.replace(agents=list(reversed(base.agents))).xis == [4.0, 2.0, -6.0]


@pytest.mark.parametrize("key, value, field", [
    ("run.seed", -1, "run.seed"),
    ("market.stepz", 3, "market.stepz"),
    ("nosuch.field", 1, "nosuch.field"),
    ("agents[7].gamma", 1.0, "agents[7].gamma"),
])
def test_replace_rejects_bad_changes(key, value, field):
    base = load_scenario("base.toml", text=BASE)
    with pytest.raises(ScenarioError) as info:
        base.replace(**{key: value})
    assert "\n" not in str(info.value) and field in str(info.value) and str(value) in str(info.value)


def test_round_schedule_repeats_the_last_entry():
    settings = SolverSettings(schedule="rounds", mu_mode="learned", rounds=5, agents_iterations=[500, 1000],
                              market_iterations=[200],
                              agents_lr=[1e-2, 1e-2, 1e-3], market_lr=[1e-3], clearing_weight=[1, 10])
    assert settings.round_schedule(0) == (500, 200, 1e-2, 1e-3, 1.0)
    assert settings.round_schedule(1) == (1000, 200, 1e-2, 1e-3, 10.0)
    assert settings.round_schedule(2) == (1000, 200, 1e-3, 1e-3, 10.0)
    assert settings.round_schedule(9).clearing_weight == 10.0
    assert SolverSettings(schedule="rounds", clearing_weight=5).round_schedule(3).clearing_weight == 5.0
    assert settings.total_iterations == 500 + 4 * 1000 + 5 * 200


# --- bad input: one line naming the field and the value ---------------------------------------------

BAD = {
    # case: (scenario text, field named, value shown)
    "unknown top-level key": ('colour = "red"\n' + BASE, "colour", "'red'"),
    "unknown key in a section": (edit("steps = 50", "steps = 50\nstepz = 3"), "market.stepz", "3"),
    "unknown key in an agent": (edit("gamma = 2.0", "gamma = 2.0\nrisk = 1"), "agents[0].risk", "1"),
    "string for a float": (edit("alpha = 1.0", 'alpha = "one"'), "market.alpha", "'one'"),
    "quoted number for a float": (edit("alpha = 1.0", 'alpha = "1.0"'), "market.alpha", "'1.0'"),
    "boolean for a float": (edit("alpha = 1.0", "alpha = true"), "market.alpha", "true"),
    "missing required field": (edit("horizon = 0.2\n", ""), "market.horizon", "missing"),
    "missing section": (BASE[: BASE.index("[frictions]")] + BASE[BASE.index("[[agents]]"):],
                        "frictions", "missing"),
    "gamma = 0": (edit("gamma = 2.0", "gamma = 0.0"), "agents[0].gamma", "0.0"),
    "gamma < 0": (edit("gamma = 1.5", "gamma = -1.5"), "agents[1].gamma", "-1.5"),
    "lambda < 0": (edit("lambda = 1e-2", "lambda = -0.5"), "frictions.lambda", "-0.5"),
    "q = 1": (edit("q = 2.0", "q = 1.0"), "frictions.q", "1.0"),
    "q = 2.5": (edit("q = 2.0", "q = 2.5"), "frictions.q", "2.5"),
    "q = nan": (edit("q = 2.0", "q = nan"), "frictions.q", "nan"),
    "one agent": (only_agents((1.0, 0.0)), "agents", "1 agent"),
    "agents as one table": (only_agents((1.0, 0.0)).replace("[[agents]]", "[agents]"),
                            "agents", "'gamma': 1.0"),
    "xi do not sum to 0": (edit("xi = 4.0", "xi = 5.0"), "agents.xi", "[-6.0, 2.0, 5.0]"),
    "horizon = 0": (edit("horizon = 0.2", "horizon = 0.0"), "market.horizon", "0.0"),
    "horizon < 0": (edit("horizon = 0.2", "horizon = -1.0"), "market.horizon", "-1.0"),
    "steps = 0": (edit("steps = 50", "steps = 0"), "market.steps", "0"),
    "fractional steps": (edit("steps = 50", "steps = 50.5"), "market.steps", "50.5"),
    "bad choice": (edit('mu_mode = "learned"', 'mu_mode = "guess"'), "solver.mu_mode", "'guess'"),
    "known mu, q = 1.5, 3 agents": (edit('mu_mode = "learned"', 'mu_mode = "known"',
                                         edit("q = 2.0", "q = 1.5")), "solver.mu_mode", "'known'"),
    "implied mu with a baseline": (edit('mu_mode = "learned"', 'mu_mode = "implied"\nmethod = "joint"'),
                                   "solver.mu_mode", "'implied'"),
    "malformed TOML": (edit("alpha = 1.0", "alpha = = 1.0"), "line 4", "alpha = = 1.0"),
    "unclosed table header": ("[market\n", "line 1", "[market"),
}


@pytest.mark.parametrize("text, field, value", BAD.values(), ids=BAD.keys())
def test_bad_scenario_text_is_one_line_naming_field_and_value(text, field, value):
    with pytest.raises(ScenarioError) as info:
        load_scenario("bad.toml", text=text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.toml: ")
    assert field in message and value in message
    assert info.value.field == field


def test_messages_say_what_is_allowed():
    def message(text: str) -> str:
        with pytest.raises(ScenarioError) as info:
            load_scenario("bad.toml", text=text)
        return str(info.value)

    assert message(BAD["q = 2.5"][0]).endswith("must be a number in (1, 2] (cost exponent q; 2 is quadratic)")
    assert "must be a number > 0" in message(BAD["gamma = 0"][0])
    assert "must be an integer in [1, 100000]" in message(BAD["steps = 0"][0])
    assert "did you mean 'steps'?" in message(BAD["unknown key in a section"][0])
    assert "written without quotes" in message(BAD["quoted number for a float"][0])
    assert "they sum to 1" in message(BAD["xi do not sum to 0"][0])
    assert "mu_mode = 'learned'" in message(BAD["known mu, q = 1.5, 3 agents"][0])
    assert "at least 2 agents" in message(BAD["one agent"][0])
    assert "[[agents]] (double brackets)" in message(BAD["agents as one table"][0])
    assert "malformed TOML" in message(BAD["malformed TOML"][0])


def test_known_mu_is_allowed_for_quadratic_cost_or_two_agents():
    quadratic = edit('mu_mode = "learned"', 'mu_mode = "known"')
    assert load_scenario("ok.toml", text=quadratic).solver.mu_mode == "known"
    two = only_agents((1.0, 3.0), (2.0, -3.0)).replace('mu_mode = "learned"', 'mu_mode = "known"')
    assert load_scenario("ok.toml", text=two.replace("q = 2.0", "q = 1.5")).n_agents == 2


@pytest.mark.parametrize("case", ["missing file", "directory", "not UTF-8"])
def test_bad_files_are_one_line_naming_the_file(tmp_path, case):
    names = {"missing file": "nope.toml", "directory": "", "not UTF-8": "latin1.toml"}
    path = tmp_path / names[case]
    if case == "not UTF-8":
        path.write_bytes(edit('name = "base"', 'name = "caf\xe9"').encode("latin-1"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message and info.value.field == "file" and str(path) in message
    if case == "not UTF-8":
        assert "UTF-8" in message and "0xe9" in message and "line 1" in message
