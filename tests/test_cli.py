"""The command line: exit codes, one-line errors, and the run -> HDF5 -> show round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from marketeq.cli import main
from marketeq.scenario import scenario_to_toml

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "marketeq", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_validate_every_shipped_scenario(capsys):
    for path in sorted(SCENARIOS.glob("*.toml")):
        assert main(["validate", str(path)]) == 0
        assert "ok" in capsys.readouterr().out


@pytest.mark.parametrize("text, field", [
    ("[market]\nalpha = 1.0\n", "market.beta"),
    ("name = 'x'\n[market\n", "toml"),
])
def test_bad_scenario_is_one_line_and_exit_2(tmp_path, text, field):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    done = run_cli("run", str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_missing_files_are_one_line(tmp_path):
    for args in (["run", str(tmp_path / "nope.toml")], ["show", str(tmp_path / "nope.h5")]):
        done = run_cli(*args)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_gamma_out_of_range_names_the_agent(tmp_path, quickstart):
    text = scenario_to_toml(quickstart).replace("gamma = 1.5", "gamma = -1.5")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    done = run_cli("validate", str(bad))
    assert done.returncode == 2 and "agents[1].gamma" in done.stderr and "-1.5" in done.stderr


def test_run_writes_hdf5_that_show_reads(tmp_path, tiny):
    short = tiny.replace(**{"solver.rounds": 1, "solver.agents_iterations": [10],
                            "solver.market_iterations": [10], "run.test_paths": 100})
    scenario = tmp_path / "short.toml"
    scenario.write_text(scenario_to_toml(short))
    out = tmp_path / "out.h5"
    done = run_cli("run", str(scenario), "-o", str(out), "--seed", "3", "--quiet")
    assert done.returncode == 0, done.stderr
    assert out.exists() and not list(tmp_path.glob("*.tmp*"))
    shown = run_cli("show", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["status"] == "completed" and data["provenance"]["seed"] == 3
    assert data["oracle"] == "riccati" and len(data["t"]) == short.market.steps + 1
    assert np.isclose(data["sigma0"], data["sigma"][0]) and data["metrics"]["clearing"]["value"] >= 0
    assert len(data["oracle_sigma"]) == len(data["sigma"])
    table = run_cli("show", str(out))
    assert "oracle/sigma_sup_rel_error" in table.stdout and "riccati" in table.stdout


def test_oracle_command_matches_the_e1_reference(tmp_path):
    e1 = str(SCENARIOS / "paper_e1_quadratic_10_agents.toml")
    done = run_cli("oracle", e1, "-o", str(tmp_path / "o.h5"))
    assert done.returncode == 0, done.stderr
    assert "0.361156" in done.stdout  # continuous-time E[S_0]
    shown = json.loads(run_cli("show", str(tmp_path / "o.h5"), "--json").stdout)
    assert abs(shown["mu0"] - 0.2158) < 1e-4 and abs(shown["sigma0"] - 1.24543) < 1e-5


def test_oracle_refuses_power_costs(tmp_path, quickstart):
    scenario = tmp_path / "power.toml"
    scenario.write_text(scenario_to_toml(quickstart.replace(**{"frictions.q": 1.5})))
    done = run_cli("oracle", str(scenario))
    assert done.returncode == 2 and "no oracle" in done.stderr


@pytest.fixture(scope="module")
def bad_results(tmp_path_factory, quickstart):
    import h5py

    import marketeq

    folder = tmp_path_factory.mktemp("bad")
    good = marketeq.write_result(marketeq.oracle_result(quickstart), folder / "good.h5")
    data = good.read_bytes()
    (folder / "truncated.h5").write_bytes(data[:4096])
    (folder / "newer.h5").write_bytes(data)
    with h5py.File(folder / "newer.h5", "r+") as f:
        f.attrs["schema_version"] = 3
    with h5py.File(folder / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    (folder / "noise.h5").write_bytes(bytes(range(256)) * 8)
    return folder


@pytest.mark.parametrize("name, fragment", [("truncated.h5", "truncated"), ("newer.h5", "schema_version 3"),
                                            ("foreign.h5", "not a marketeq result"),
                                            ("noise.h5", "not an HDF5 file")])
def test_show_of_a_bad_result_is_one_line_and_exit_2(bad_results, capsys, name, fragment):
    assert main(["show", str(bad_results / name)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and fragment in captured.err
