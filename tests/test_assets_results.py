"""Several assets end to end: the oracle result of a d-asset scenario, its HDF5 round trip with asset axes,
``show --json``, the refusal of the solvers, and the separable market against one-asset oracles."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import marketeq
from marketeq.cli import main
from marketeq.hdf5 import SCHEMA_VERSION, read_result, write_result
from marketeq.scenario_files import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
PATHS = 64


def small(name: str) -> marketeq.Scenario:
    return load_scenario(SCENARIOS / f"{name}.toml").replace(**{"run.test_paths": PATHS, "market.steps": 40})


@pytest.fixture(scope="module")
def three():
    return marketeq.oracle_result(small("assets_3_quadratic"))


def test_the_oracle_result_has_asset_axes_and_clears(three):
    p, s = three.paths, three.scenario
    assert three.solver == "oracle:riccati" and three.oracle_name == "riccati"
    assert p.n_assets == 3 and p.W.shape == (PATHS, 41, 3) and p.phi.shape == (PATHS, 41, 10, 3)
    assert p.sigma.shape == (PATHS, 41, 3, 3) and p.mu.shape == p.S.shape == (PATHS, 41, 3)
    np.testing.assert_allclose(p.phi.sum(2), np.broadcast_to(s.market.supply, (PATHS, 41, 3)), atol=1e-9)
    np.testing.assert_allclose(p.sigma[:, -1], np.broadcast_to(s.market.alpha, (PATHS, 3, 3)), atol=1e-10)
    assert three.metrics["clearing"].value < 1e-20
    assert {f"S0/{i}" for i in (1, 2, 3)} | {"sigma0/1,3", "mu0/2", "J/10"} <= set(three.metrics)
    # the costs make Sigma_0 differ from A: the oracle is not the frictionless answer
    assert abs(three.metrics["sigma0/1,1"].value - 1.0) > 0.05


def test_the_frictionless_oracle_is_there_by_name():
    result = marketeq.oracle_result(small("assets_2_separable"), "frictionless")
    A = np.array(result.scenario.market.alpha)
    np.testing.assert_allclose(result.paths.sigma[0, 0], A)
    assert result.solver == "oracle:frictionless"


def test_the_separable_scenario_is_two_one_asset_markets():
    both = marketeq.oracle_result(small("assets_2_separable"))
    for i in range(2):
        alone = marketeq.oracle_result(both.scenario.one_asset(i))
        for key in ("S0", "mu0", "sigma0"):  # exact or deterministic at t = 0: no sampling in them
            assert both.metrics[f"{key}/{i + 1}" if key != "sigma0" else f"sigma0/{i + 1},{i + 1}"].value == \
                pytest.approx(alone.metrics[key].value, rel=1e-8), key
    assert both.metrics["sigma0/1,2"].value == both.metrics["sigma0/2,1"].value == 0.0


def test_a_d_asset_result_round_trips_through_hdf5(three, tmp_path):
    path = write_result(three, tmp_path / "three.h5")
    back = read_result(path)
    for field in ("t", "W", "dW", "phi", "phidot", "mu", "sigma", "S"):
        np.testing.assert_array_equal(getattr(back.paths, field), getattr(three.paths, field), err_msg=field)
    assert list(back.metrics) == list(three.metrics) and back.scenario == three.scenario
    np.testing.assert_array_equal(np.array(list(back.metrics.values())), np.array(list(three.metrics.values())))
    with h5py.File(path) as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION == 2 and f["scenario"].attrs["n_assets"] == 3
        assert [d.label for d in f["paths/solver/sigma"].dims] == ["path", "time", "asset", "factor"]
        assert [d.label for d in f["paths/solver/phi"].dims] == ["path", "time", "agent", "asset"]
        assert list(f["paths/solver/asset"].asstr()[()]) == ["asset 1", "asset 2", "asset 3"]
        assert f["scenario/market"].attrs["alpha"].shape == (3, 3)
        assert f["scenario/agents/xi"].shape == (10, 3, 3)


def test_a_schema_version_1_file_still_reads(tmp_path, quickstart):
    path = write_result(marketeq.oracle_result(quickstart.replace(**{"run.test_paths": 50})), tmp_path / "one.h5")
    with h5py.File(path, "r+") as f:
        assert f["paths/solver/phi"].ndim == 3  # one asset: the version-1 layout
        f.attrs["schema_version"] = 1
    assert read_result(path).paths.n_assets == 1


def test_show_json_carries_the_assets(three, tmp_path, capsys):
    path = write_result(three, tmp_path / "three.h5")
    assert main(["show", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["assets"] == 3 and len(data["S0"]) == 3 and np.shape(data["sigma0"]) == (3, 3)
    assert np.shape(data["sigma"]) == (41, 3, 3) and np.shape(data["mu_mean"]) == (41, 3)
    assert np.shape(data["phi_mean"]) == (41, 10, 3) and np.shape(data["S_mean"]) == (41, 3)
    assert data["S0"][1] == three.metrics["S0/2"].value


@pytest.mark.parametrize(("command", "name", "field"), [
    ("run", "assets_3_power", "frictions.q = 1.5"), ("compare", "assets_3_quadratic", "solver.method = 'rlink'")])
def test_what_no_solver_handles_for_several_assets_is_refused_in_one_line(command, name, field, tmp_path):
    out = tmp_path / "out.h5"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as printed:
        code = main([command, str(SCENARIOS / f"{name}.toml"), "-o", str(out)])
    assert code == 2 and err.getvalue().count("\n") == 1 and printed.getvalue() == ""
    assert field in err.getvalue() and "market.assets = 3" in err.getvalue()
    assert not any(tmp_path.iterdir())


def test_solve_refuses_several_assets():
    with pytest.raises(marketeq.ScenarioError, match="solver.method = 'fbsde'.*market.assets = 2"):
        marketeq.solve(small("assets_2_separable").replace(**{"solver.method": "fbsde"}))


def test_power_costs_on_several_assets_have_no_oracle(capsys):
    assert marketeq.oracle_result(small("assets_3_power")) is None
    assert main(["oracle", str(SCENARIOS / "assets_3_power.toml")]) == 2
    assert "no exact answer for 3 assets" in capsys.readouterr().err
