"""[[populations]] and agents_file: expansion rules, the zero-sum of xi, one-line errors, saved text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketeq.cli import main
from marketeq.scenario import ScenarioError, scenario_to_toml
from marketeq.scenario_files import load_scenario

HEAD = """name = "many"
[market]
alpha = 1.0
beta = 2.0
supply = 1.0
horizon = 0.2
steps = 10
[frictions]
lambda = 1e-2
"""


def load(tmp_path, body: str, csv: str | None = None):
    """A scenario of HEAD and ``body``; ``body``'s top-level keys (before its first table) go first."""
    if csv is not None:
        (tmp_path / "agents.csv").write_text(csv, encoding="utf-8")
    cut = body.find("\n[") + 1 if not body.startswith("[") else 0
    top, tables = (body, "") if cut == 0 and not body.startswith("[") else (body[:cut], body[cut:])
    path = tmp_path / "s.toml"
    path.write_text(top + HEAD + tables, encoding="utf-8")
    return load_scenario(path)


def error(tmp_path, body: str, csv: str | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, body, csv)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_drawn_population_is_seeded_centred_and_in_range(tmp_path):
    body = """[[populations]]
name = "funds"
count = 200
gamma_range = [1.0, 3.0]
xi_sd = 10.0
seed = 5
"""
    s = load(tmp_path, body)
    gamma, xi = np.array(s.gammas), np.array(s.xis)
    assert s.n_agents == 200 and s.agent_names[0] == "funds 1" and s.agent_names[-1] == "funds 200"
    assert gamma.min() >= 1.0 and gamma.max() <= 3.0 and gamma.std() > 0.4  # uniform: sd 0.58
    assert abs(math.fsum(xi)) < 1e-9 and 8 < xi.std() < 12
    rng = np.random.default_rng(5)  # the documented draws: gammas first, then xi, from one generator
    np.testing.assert_array_equal(gamma, rng.uniform(1.0, 3.0, 200))
    draws = rng.normal(0.0, 10.0, 200)
    np.testing.assert_allclose(xi, draws - draws.mean(), rtol=0, atol=1e-12)
    assert load(tmp_path, body).agents == s.agents
    assert load(tmp_path, body.replace("seed = 5", "seed = 6")).agents != s.agents


def test_even_and_loguniform_gammas_and_a_common_lambda(tmp_path):
    s = load(tmp_path, """[[populations]]
count = 5
gamma_range = [1.0, 2.0]
gamma_draw = "even"
xi = [1, 2, 3, -4, -2]
lambda = 0.05
""")
    assert s.gammas == pytest.approx([1.0, 1.25, 1.5, 1.75, 2.0]) and s.xis == [1, 2, 3, -4, -2]
    assert s.lams == [0.05] * 5
    log = load(tmp_path, """[[populations]]
count = 400
gamma_range = [1.0, 100.0]
gamma_draw = "loguniform"
xi_sd = 1.0
""")
    assert np.median(log.gammas) == pytest.approx(10.0, rel=0.3)  # uniform in log: median sqrt(1 * 100)


def test_agents_tables_file_and_populations_combine_in_order(tmp_path):
    s = load(tmp_path, """agents_file = "agents.csv"
[[agents]]
gamma = 1.0
xi = 5.0
[[populations]]
count = 2
gamma = 2.0
xi = -2.5
""", "gamma,xi,lambda,name\n1.5,3,,a\n2,-3,0.02,b\n")
    assert s.gammas == [1.0, 1.5, 2.0, 2.0, 2.0] and s.xis == [5.0, 3.0, -3.0, -2.5, -2.5]
    assert s.lams == [0.01, 0.01, 0.02, 0.01, 0.01] and s.agent_names[1:3] == ["a", "b"]


def test_saved_text_rebuilds_the_same_agents(tmp_path):
    s = load(tmp_path, "[[populations]]\ncount = 50\ngamma_range = [1, 3]\nxi_sd = 7.0\nseed = 1\n")
    assert load_scenario("saved.toml", text=scenario_to_toml(s)) == s


@pytest.mark.parametrize(("body", "csv", "expected"), [
    ("[[populations]]\ncount = 3\ngamma = 1.0\nxi = [1, 2, 3]\n", None,
     "populations[0].xi_rule = 'as-given': the agents' xi sum to 6, but they must sum to 0; use xi_rule = "
     "'centred'"),
    ("[[populations]]\ncount = 0\ngamma = 1.0\n", None,
     "populations[0].count = 0: must be an integer in [1, 1000]"),
    ("[[populations]]\ncount = 3\ngamma = 1.0\ngamma_range = [1, 2]\n", None,
     "populations[0].gamma = 1.0: give exactly one of gamma"),
    ("[[populations]]\ncount = 3\ngamma_range = [2, 1]\n", None, "populations[0].gamma_range = [2.0, 1.0]"),
    ("[[populations]]\ncount = 3\ngamma = 1.0\nxi = [1, -1]\n", None,
     "populations[0].xi = [1.0, -1.0]: a list needs one number per agent: 3"),
    ("[[populations]]\ncount = 3\ngamma = 1.0\nxi_rule = 'middle'\n", None,
     "populations[0].xi_rule = 'middle': must be one of 'centred', 'as-given'"),
    ("[[populations]]\ncount = 3\ngamma = 1.0\nsd = 2\n", None,
     "populations[0].sd = 2: unknown key in [[populations]]; allowed:"),
    ("populations = 3\n", None, "populations = 3: must be an array of tables"),
    ("agents_file = 'agents.csv'\n", "gamma,xi\n1,2\n1,-1\n",
     "agents_file = 'agents.csv': the agents' xi sum to 1"),
    ("agents_file = 'agents.csv'\n", "gamma,xi,beta\n1,2,3\n", "unknown column 'beta'"),
    ("agents_file = 'agents.csv'\n", "gamma\n1\n", "no column 'xi'"),
    ("agents_file = 'agents.csv'\n", "gamma,xi\n1,x\n", "line 2, column xi: 'x' is not a number"),
    ("agents_file = 'agents.csv'\n", "gamma,xi\n", "has no agents"),
    ("agents_file = 'missing.csv'\n", None, "agents_file = 'missing.csv': cannot be read"),
])
def test_one_line_errors(tmp_path, body, csv, expected):
    assert expected in error(tmp_path, body, csv)


def test_validate_prints_the_expanded_summary(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(HEAD + "[[populations]]\ncount = 1000\ngamma_range = [1, 3]\n"
                                            "xi_sd = 10.0\n", encoding="utf-8")
    assert main(["validate", str(tmp_path / "s.toml")]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 and "1000 agents: gamma 1" in out and "|xi| " in out
    assert "lambda 0.01" in out
