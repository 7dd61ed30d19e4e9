"""Scenario files with several risky assets: the format, its round trip, one asset unchanged, and every
malformed shape as one line naming the field, with exit code 2."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from marketeq.cli import main
from marketeq.scenario import ScenarioError, scenario_to_toml
from marketeq.scenario.assets import asset_arrays
from marketeq.scenario_files import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
THREE = (SCENARIOS / "assets_3_quadratic.toml").read_text(encoding="utf-8")
TWO = (SCENARIOS / "assets_2_separable.toml").read_text(encoding="utf-8")
QUICKSTART = (SCENARIOS / "quickstart.toml").read_text(encoding="utf-8")
XI_0 = "xi = [[22.0, 1.4, -2.2], [-5.0, -28.4, 0.1], [-3.2, -3.5, -2.2]]"
LAMBDA = "lambda = [1e-2, 3e-2, 3e-3]"


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_three_assets_read_as_arrays():
    s = load_scenario(SCENARIOS / "assets_3_quadratic.toml")
    arrays = asset_arrays(s)
    assert (s.n_assets, s.n_agents) == (3, 10)
    np.testing.assert_array_equal(arrays.A, [[1.0, 0.0, 0.0], [0.4, 0.9, 0.0], [0.3, 0.2, 1.2]])
    np.testing.assert_array_equal(arrays.beta, [2.0, 1.5, 1.0])
    np.testing.assert_array_equal(arrays.supply, [1.0, 0.5, 2.0])
    assert arrays.xi.shape == (10, 3, 3) and arrays.xi[0, 1, 1] == -28.4
    assert np.abs(arrays.xi.sum(0)).max() < 1e-12 and arrays.lam == [1e-2, 3e-2, 3e-3]
    assert not arrays.frictionless


@pytest.mark.parametrize("name", ["assets_3_quadratic", "assets_3_power", "assets_2_separable"])
def test_several_assets_round_trip_through_toml(name):
    s = load_scenario(SCENARIOS / f"{name}.toml")
    text = scenario_to_toml(s)
    again = load_scenario("again.toml", text=text)
    assert again == s and scenario_to_toml(again) == text
    assert f"assets = {s.n_assets}" in text


def test_a_cost_matrix_and_a_common_cost_are_accepted():
    matrix = "lambda = [[2e-2, 5e-3, 0.0], [5e-3, 1e-2, 0.0], [0.0, 0.0, 3e-3]]"
    assert load_scenario("m.toml", text=edit(THREE, LAMBDA, matrix)).frictions.lam[0] == [2e-2, 5e-3, 0.0]
    assert load_scenario("c.toml", text=edit(THREE, LAMBDA, "lambda = 1e-2")).frictions.lam == 1e-2
    free = load_scenario("f.toml", text=edit(THREE, LAMBDA, "lambda = [0.0, 0.0, 0.0]"))
    assert asset_arrays(free).frictionless


def test_replace_edits_a_matrix_entry_and_revalidates():
    s = load_scenario(SCENARIOS / "assets_2_separable.toml")
    assert s.replace(**{"market.alpha": [[1.0, 0.2], [0.0, 0.6]]}).market.alpha[0][1] == 0.2
    with pytest.raises(ScenarioError, match="agents.xi"):
        s.replace(**{"agents[0].xi": [[9.0, 0.0], [0.0, -3.0]]})


def test_one_asset_is_read_exactly_as_before():
    s = load_scenario(SCENARIOS / "quickstart.toml")
    m = s.market
    assert (m.assets, s.n_assets) == (1, 1)
    for value in (m.alpha, m.beta, m.supply, s.frictions.lam, *s.xis):
        assert type(value) is float  # numbers stay numbers: every one-asset consumer reads floats
    arrays = asset_arrays(s)
    assert arrays.A.shape == (1, 1) and arrays.xi.shape == (s.n_agents, 1, 1)
    assert arrays.A[0, 0] == m.alpha and list(arrays.xi[:, 0, 0]) == s.xis
    assert load_scenario("d1.toml", text=edit(QUICKSTART, "[market]\n", "[market]\nassets = 1\n")) == s


MALFORMED = {
    # case: (scenario text, field named, words in the message)
    "A not square": (edit(THREE, "[0.3, 0.2, 1.2]]", "]").replace("[0.4, 0.9, 0.0],", "[0.4, 0.9, 0.0]", 1),
                     "market.alpha", "3 x 3 matrix"),
    "A ragged": (edit(THREE, "[0.4, 0.9, 0.0]", "[0.4, 0.9]"), "market.alpha", "3 x 3 matrix"),
    "A singular": (edit(THREE, "[0.3, 0.2, 1.2]", "[1.4, 0.9, 0.0]"), "market.alpha", "singular"),
    "A a number": (edit(THREE, "[[1.0, 0.0, 0.0],\n         [0.4, 0.9, 0.0],\n         [0.3, 0.2, 1.2]]",
                        "1.0"), "market.alpha", "3 x 3 matrix"),
    "Lambda not positive definite": (edit(THREE, LAMBDA, "lambda = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], "
                                                         "[0.0, 0.0, 1.0]]"),
                                     "frictions.lambda", "not positive definite"),
    "Lambda not symmetric": (edit(THREE, LAMBDA, "lambda = [[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]"),
                             "frictions.lambda", "not symmetric"),
    "Lambda matrix with q < 2": (edit(edit(THREE, LAMBDA, "lambda = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], "
                                                          "[0.0, 0.0, 1.0]]"), "q = 2.0", "q = 1.5"),
                                 "frictions.lambda", "needs q = 2"),
    "Lambda of the wrong length": (edit(THREE, LAMBDA, "lambda = [1e-2, 3e-2]"), "frictions.lambda",
                                   "list of 3 numbers"),
    "some assets free": (edit(THREE, LAMBDA, "lambda = [0.0, 3e-2, 3e-3]"), "frictions.lambda", "all 0"),
    "Xi not summing to zero": (edit(THREE, "xi = [[22.0,", "xi = [[23.0,"), "agents.xi", "zero matrix"),
    "Xi a number": (edit(THREE, XI_0, "xi = 1.0"), "agents[0].xi", "3 x 3 matrix"),
    "Xi of the wrong size": (edit(TWO, "assets = 2", "assets = 3").replace(
        "alpha = [[1.0, 0.0],\n         [0.0, 0.6]]",
        "alpha = [[1.0, 0.0, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 1.0]]")
        .replace("beta = [2.0, 1.0]", "beta = [2.0, 1.0, 1.0]")
        .replace("supply = [1.0, 2.0]", "supply = [1.0, 2.0, 1.0]")
        .replace("lambda = [1e-2, 5e-2]", "lambda = 1e-2"), "agents[0].xi", "3 x 3 matrix"),
    "beta of the wrong length": (edit(THREE, "beta = [2.0, 1.5, 1.0]", "beta = [2.0, 1.5]"), "market.beta",
                                 "list of 3 numbers"),
    "supply a number": (edit(THREE, "supply = [1.0, 0.5, 2.0]", "supply = 1.0"), "market.supply",
                        "list of 3 numbers"),
    "negative supply": (edit(THREE, "supply = [1.0, 0.5, 2.0]", "supply = [1.0, -0.5, 2.0]"),
                        "market.supply[1]", "> 0"),
    "mixed nesting": (edit(THREE, "beta = [2.0, 1.5, 1.0]", "beta = [2.0, [1.5], 1.0]"), "market.beta",
                      "list of d numbers"),
    "text in a matrix": (edit(THREE, "[0.4, 0.9, 0.0]", "[0.4, \"0.9\", 0.0]"), "market.alpha", "matrix"),
    "an agent's own cost": (edit(THREE, "gamma = 1.1\n", "gamma = 1.1\nlambda = 0.1\n"), "agents[1].lambda",
                            "frictions.lambda"),
    "a list with one asset": (edit(QUICKSTART, "beta = 2.0", "beta = [2.0]"), "market.beta",
                              "market.assets = 1"),
    "a matrix xi with one asset": (edit(QUICKSTART, "xi = 4.0", "xi = [[4.0]]"), "agents[2].xi",
                                   "market.assets = 1"),
    "no assets": (edit(THREE, "assets = 3", "assets = 0"), "market.assets", "integer in [1, 100]"),
}


@pytest.mark.parametrize("text, field, words", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_matrix_is_one_line_naming_the_field(text, field, words, tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario("bad.toml", text=text)
    message = str(info.value)
    assert "\n" not in message and info.value.field == field and words in message, message
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["validate", str(bad)]) == 2
    assert err.getvalue().count("\n") == 1 and field in err.getvalue()


def test_validate_in_a_process_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MALFORMED["A singular"][0], encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "marketeq", "validate", str(bad)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "market.alpha" in done.stderr


def test_validate_says_how_many_assets(capsys):
    assert main(["validate", str(SCENARIOS / "assets_3_power.toml")]) == 0
    out = capsys.readouterr().out
    assert "3 assets, 10 agents" in out and "no solver or exact answer" in out
    assert main(["validate", str(SCENARIOS / "assets_3_quadratic.toml")]) == 0
    assert "'marketeq run' solves it" in capsys.readouterr().out
