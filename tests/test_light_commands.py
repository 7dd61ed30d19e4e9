"""``marketeq --help``, ``validate`` and ``show`` never load torch (they must start at once), and a result
shows the same table whether its oracle metrics were stored or are recomputed for an older file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import marketeq
from marketeq.api import with_oracle_metrics
from marketeq.cli import main
from marketeq.results import Metric, Paths, RunResult

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
HEAVY = ("torch", "scipy", "marketeq.api", "marketeq.solvers", "PySide6", "pydantic")


def fake_paths(rng: np.random.Generator, n_agents: int, n_paths: int = 6, n_steps: int = 5) -> Paths:
    shape = (n_paths, n_steps + 1)
    W = np.concatenate([np.zeros((n_paths, 1)), rng.normal(size=(n_paths, n_steps)).cumsum(1)], 1)
    return Paths(t=np.linspace(0.0, 0.2, n_steps + 1), W=W, dW=np.diff(W, axis=1),
                 phi=rng.normal(size=(*shape, n_agents)), phidot=rng.normal(size=(*shape, n_agents)),
                 mu=rng.normal(size=shape), sigma=1.0 + 0.1 * rng.normal(size=shape),
                 S=rng.normal(size=shape))


@pytest.fixture(scope="module")
def result() -> RunResult:
    """A result with an oracle whose stored metrics are what marketeq computes for it."""
    scenario = marketeq.load_scenario(QUICKSTART).replace(**{"market.steps": 5})
    rng = np.random.default_rng(3)
    bare = RunResult(scenario=scenario, scenario_toml=marketeq.scenario_to_toml(scenario), solver="rlink",
                     status="completed", provenance={"seed": 0}, history={"step": np.zeros(0, np.int64)},
                     paths=fake_paths(rng, scenario.n_agents),
                     metrics={"sum_J": Metric(-0.5, 0.01), "S0": Metric(0.29, 0.0)}, oracle_name="riccati",
                     oracle_paths=fake_paths(rng, scenario.n_agents))
    return with_oracle_metrics(bare)


def run_cli(args: list[str]) -> dict:
    """Exit code, output and the heavy modules loaded by ``marketeq ARGS`` in a fresh interpreter."""
    code = ("import json, sys\nfrom marketeq.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            f"loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
            "print('\\n' + json.dumps({'code': code, 'loaded': loaded}))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    *output, last = done.stdout.rstrip("\n").split("\n")
    return {**json.loads(last), "output": "\n".join(output), "stderr": done.stderr}


def test_help_validate_and_show_load_no_torch(result, tmp_path):
    path = marketeq.write_result(result, tmp_path / "r.h5")
    np.testing.assert_equal(marketeq.read_result(path).oracle_metrics, result.oracle_metrics)  # NaN == NaN
    # validate checks a scenario and needs pydantic; the others need not even that
    for args, loaded in ((["--help"], []), (["validate", str(QUICKSTART)], ["pydantic"]),
                         (["show", str(path)], []), (["show", "--json", str(path)], ["pydantic"])):
        done = run_cli(args)
        assert done["code"] == 0, (args, done["stderr"])
        assert done["loaded"] == loaded, (args, done["loaded"])
    shown = " ".join(run_cli(["show", str(path)])["output"].split())  # the title may wrap
    assert "oracle (riccati)" in shown and f"{result.scenario.name}, rlink, completed" in shown


def test_a_bad_file_is_still_a_one_line_error_without_torch(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    done = run_cli(["show", str(bad)])
    assert done["code"] == 2 and done["loaded"] in ([], ["pydantic"])  # the error types are pydantic's kin
    assert done["stderr"].count("\n") == 1 and "not an HDF5 file" in done["stderr"]


def test_stored_and_recomputed_oracle_metrics_show_alike(result, tmp_path, capsys, monkeypatch):
    shown = []
    for folder, stored in (("new", result), ("old", replace(result, oracle_metrics={}))):  # old: as before
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        marketeq.write_result(stored, "r.h5")
        assert main(["show", "r.h5"]) == 0
        shown.append(capsys.readouterr().out)
    assert marketeq.read_result("r.h5").oracle_metrics == {}
    assert shown[0] == shown[1]
    sum_j = result.oracle_metrics["sum_J"]
    assert f"{sum_j.value:.6g}" in shown[0]  # the oracle column is filled in
