"""Sweeps: sweep files, trials against direct oracle calls, failures, resuming, backends, figure, CLI."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import marketeq
from marketeq.cli import main
from marketeq.scenario import scenario_to_toml
from marketeq.sweeps import SweepError, load_sweep, read_summary, run_sweep
from marketeq.sweeps import trial as trial_module
from marketeq.sweeps.figure import series

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = [1e-3, 1e-2, 1e-1]


def write_sweep(folder: Path, base, body: str, name: str = "sweep.toml") -> Path:
    (folder / "base.toml").write_text(scenario_to_toml(base))
    path = folder / name
    path.write_text(f'base = "base.toml"\n{body}')
    return path


@pytest.fixture()
def small(quickstart):
    return quickstart.replace(**{"run.test_paths": 200, "market.steps": 20})


@pytest.fixture()
def oracle_sweep(tmp_path, small):
    body = '[[group]]\nmethods = ["oracle"]\ngrid = { "frictions.lambda" = [0.001, 0.01, 0.1] }\n'
    return load_sweep(write_sweep(tmp_path, small, body))


def test_oracle_sweep_summary_matches_direct_oracle_calls(tmp_path, small, oracle_sweep):
    outcome = run_sweep(oracle_sweep, tmp_path / "out", workers=1, progress=False)
    assert (outcome.ran, outcome.reused, outcome.failed) == (3, 0, [])
    columns, attrs = read_summary(tmp_path / "out")
    assert list(attrs["parameters"]) == ["frictions.lambda"]
    assert columns["param/frictions.lambda"].tolist() == LAMBDAS
    gbar = 1.0 / sum(1.0 / g for g in small.gammas)
    mu_bar = gbar * small.market.alpha**2 * small.market.supply
    s0_free = (small.market.beta - mu_bar) * small.market.horizon
    for i, lam in enumerate(LAMBDAS):
        with trial_module.trial_threads():  # as the trials sum: OpenBLAS rounds differently on 2 threads
            direct = marketeq.oracle_result(small.replace(**{"frictions.lambda": lam})).metrics
        for name in ("sigma0", "mu0", "S0", "sum_J", "clearing", "J/2"):
            assert columns[name][i] == direct[name].value, name
        assert columns["sum_J_se"][i] == direct["sum_J"].stderr
        assert math.isclose(columns["liquidity_premium"][i], direct["mu0"].value - mu_bar, rel_tol=1e-12)
        assert math.isclose(columns["price_discount"][i], direct["S0"].value - s0_free, rel_tol=1e-12)
        stored = marketeq.read_result(tmp_path / "out" / columns["file"][i])
        assert stored.status == "completed" and stored.scenario.frictions.lam == lam
    # Frictions raise volatility and the premium and lower the price (model.md section 3).
    assert np.all(np.diff(columns["sigma0"]) > 0) and np.all(columns["liquidity_premium"] > 0)
    assert np.all(columns["price_discount"] < 0)
    with open(tmp_path / "out" / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["mu0"]) for r in rows] == columns["mu0"].tolist()  # CSV floats round-trip exactly


def test_a_failing_trial_is_recorded_and_the_rest_complete(tmp_path, oracle_sweep, monkeypatch):
    real = trial_module.METHODS["oracle"]

    def fails_at_middle_lambda(scenario):
        if scenario.frictions.lam == 1e-2:
            raise FloatingPointError("Riccati step overflowed")
        return real(scenario)

    monkeypatch.setitem(trial_module.METHODS, "oracle", fails_at_middle_lambda)
    outcome = run_sweep(oracle_sweep, tmp_path / "out", workers=1, progress=False)
    assert [r["status"] for r in outcome.rows] == ["completed", "failed", "completed"]
    assert "FloatingPointError: Riccati step overflowed" in outcome.failed[0]["message"]
    columns, _ = read_summary(tmp_path / "out")
    assert columns["status"].tolist() == ["completed", "failed", "completed"]
    assert np.isnan(columns["sigma0"][1]) and np.isfinite(columns["sigma0"][[0, 2]]).all()
    record = marketeq.read_result(tmp_path / "out" / columns["file"][1])
    assert record.status == "failed" and "overflowed" in record.message and record.paths is None
    # Re-running retries the failed trial only.
    monkeypatch.setitem(trial_module.METHODS, "oracle", real)
    again = run_sweep(oracle_sweep, tmp_path / "out", workers=1, progress=False)
    assert (again.ran, again.reused, again.failed) == (1, 2, [])


def test_a_resumed_sweep_does_not_redo_finished_trials(tmp_path, oracle_sweep, monkeypatch):
    run_sweep(oracle_sweep, tmp_path / "out", workers=1, progress=False)
    files = sorted((tmp_path / "out" / "trials").glob("*.h5"))
    stamps = [f.stat().st_mtime_ns for f in files]
    before = read_summary(tmp_path / "out")[0]
    calls = []
    monkeypatch.setitem(trial_module.METHODS, "oracle",
                        lambda s: calls.append(s) or marketeq.oracle_result(s))
    files[0].unlink()
    outcome = run_sweep(oracle_sweep, tmp_path / "out", workers=1, progress=False)
    assert (outcome.ran, outcome.reused, len(calls)) == (1, 2, 1)
    assert [f.stat().st_mtime_ns for f in files[1:]] == stamps[1:]
    after = read_summary(tmp_path / "out")[0]
    for name in ("trial", "sigma0", "mu0", "S0", "sum_J", "file"):
        assert after[name].tolist() == before[name].tolist()


def test_parameters_derived_and_by_path(tmp_path, quickstart):
    body = ('seeds = [3, 4]\n[set]\n"run.test_paths" = 100\n'
            '[[group]]\nmethods = ["solver", "oracle"]\n'
            'zip = { xi_scale = [0.5, 2.0], gamma_spread = [0.0, 2.0] }\ngrid = { T = [0.1, 0.4] }\n'
            '[[group]]\nmethods = ["oracle"]\nseeds = [3]\n'
            'grid = { "agents[0].gamma" = { start = 1.0, stop = 3.0, num = 3 } }\n')
    sweep = load_sweep(write_sweep(tmp_path, quickstart, body))
    assert sweep.parameters == ("T", "xi_scale", "gamma_spread", "agents[0].gamma")
    assert len(sweep.trials) == 2 * 2 * 2 * 2 + 3
    first = sweep.trials[0].scenario()
    assert first.market.horizon == 0.1 and first.market.steps == quickstart.market.steps
    assert first.xis == [0.5 * x for x in quickstart.xis] and first.gammas == [1.5] * 3
    assert first.run.test_paths == 100 and first.run.seed == 3
    stretched = next(t for t in sweep.trials if dict(t.params).get("gamma_spread") == 2.0).scenario()
    assert max(stretched.gammas) - min(stretched.gammas) == pytest.approx(2.0)
    assert np.mean(stretched.gammas) == pytest.approx(np.mean(quickstart.gammas))
    assert [t.scenario().gammas[0] for t in sweep.trials[-3:]] == [1.0, 2.0, 3.0]
    assert len({t.filename for t in sweep.trials}) == len(sweep.trials)
    assert sweep.trials[0].method == "rlink"  # "solver", an earlier name: the base's own method


def test_a_method_sets_the_trials_solver_and_drops_what_it_does_not_read(tmp_path, quickstart):
    tuned = quickstart.replace(**{"solver.market_lr": [3e-4]})
    sweep = load_sweep(write_sweep(tmp_path, tuned, '[[group]]\nmethods = ["fbsde", "rlink"]\n'))
    by_method = {t.method: t.scenario() for t in sweep.trials}
    assert by_method["fbsde"].solver.method == "fbsde" and by_method["fbsde"].solver.market_lr == [1e-3]
    assert by_method["rlink"].solver.market_lr == [3e-4]


@pytest.mark.parametrize("body, field", [
    ('[[group]]\nmethods = ["orcale"]\n', "group[0].methods[0]"),
    ('[[group]]\ngrid = { "frictions.lamda" = [0.1] }\n', "frictions.lamda"),
    ('[[group]]\ngrid = { "frictions.lambda" = [-1.0] }\n', "group[0].grid.frictions.lambda"),
    ('[[group]]\ngrid = { "frictions.lambda" = { start = 0.0, stop = 1.0, num = 3, spacing = "log" } }\n',
     "group[0].grid.frictions.lambda.start"),
    ('[[group]]\nzip = { T = [0.1, 0.2], xi_scale = [1.0] }\n', "group[0].zip"),
    ('[[group]]\nmethods = ["oracle"]\n[group.set]\n"frictions.q" = 1.5\n', "group[0].methods"),
    ('[[groups]]\n', "groups"),
    ('seeds = [-1]\n[[group]]\n', "seeds[0]"),
    ('[[group]\n', "line 2"),
])
def test_bad_sweep_files_are_one_line(tmp_path, quickstart, capsys, body, field):
    path = write_sweep(tmp_path, quickstart, body)
    with pytest.raises(SweepError) as caught:
        load_sweep(path)
    assert field in str(caught.value) and "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert main(["sweep", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]


def test_bad_sweep_file_exits_2_without_traceback(tmp_path, quickstart):
    path = write_sweep(tmp_path, quickstart, "[[group]]\nmethods = []\n")
    done = subprocess.run([sys.executable, "-m", "marketeq", "sweep", str(path), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "group[0].methods" in done.stderr


def test_seeds_are_pooled_with_their_standard_error():
    columns = {"trial": np.arange(5), "status": np.array(["completed"] * 4 + ["failed"], dtype=object),
               "method": np.array(["rlink"] * 5, dtype=object),
               "param/x": np.array([1.0, 1.0, 2.0, 2.0, 2.0]),
               "sigma0": np.array([1.0, 1.2, 2.0, np.nan, 9.0]), "sigma0_se": np.array([0.01] * 5)}
    (xs, mean, err, counts), = series(columns, "x", "sigma0").values()
    assert xs.tolist() == [1.0, 2.0] and counts.tolist() == [2, 1]
    assert mean == pytest.approx([1.1, 2.0]) and err == pytest.approx([0.1, 0.01])


def test_cli_sweep_then_predict(tmp_path, small):
    body = ('[[group]]\nmethods = ["oracle"]\n'
            'grid = { "frictions.lambda" = [0.001, 0.1], xi_scale = [1.0, 2.0] }\n')
    path = write_sweep(tmp_path, small, body)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "-o", str(out), "--workers", "1", "--quiet"]) == 0
    assert (out / "sweep.toml").read_text() == path.read_text()
    assert main(["predict", str(out), "-o", str(tmp_path / "p.png"), "--x", "xi_scale"]) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["predict", str(out), "-o", str(tmp_path / "p.png"), "--x", "gamma"]) == 2
    assert main(["predict", str(tmp_path), "-o", str(tmp_path / "p.png")]) == 2  # no summary there
    assert main(["sweep", str(path), "--address", "127.0.0.1:6379"]) == 2


def test_shipped_sweeps_are_valid():
    lam = load_sweep(ROOT / "scenarios" / "sweeps" / "lambda_quadratic.toml")
    assert lam.parameters == ("frictions.lambda",)
    by_method = {m: sorted({dict(t.params)["frictions.lambda"] for t in lam.trials if t.method == m})
                 for m in ("oracle", "rlink")}
    assert min(by_method["oracle"]) == 1e-4 and max(by_method["oracle"]) == pytest.approx(0.1)
    assert len(by_method["oracle"]) >= 10 and len(by_method["rlink"]) >= 3
    assert set(by_method["rlink"]) <= set(by_method["oracle"])  # solver points sit on the oracle's grid
    assert all(t.scenario().n_agents == 10 for t in lam.trials[:1])
    power = load_sweep(ROOT / "scenarios" / "sweeps" / "power_two_agents.toml")
    assert {t.method for t in power.trials} == {"rlink"}
    assert {t.scenario().frictions.q for t in power.trials} == {1.5}


def test_ray_and_local_backends_give_identical_summaries(tmp_path, tiny):
    pytest.importorskip("ray")
    short = tiny.replace(**{"solver.rounds": 1, "solver.agents_iterations": [10],
                            "solver.market_iterations": [10], "run.test_paths": 100, "run.seed": 7})
    path = write_sweep(tmp_path, short, '[[group]]\nmethods = ["rlink", "oracle"]\n')
    sweep = load_sweep(path)
    local = run_sweep(sweep, tmp_path / "local", backend="local", workers=2, progress=False)  # a process pool
    ray = run_sweep(sweep, tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert local.failed == ray.failed == [] and local.ran == ray.ran == 2
    a, b = read_summary(tmp_path / "local")[0], read_summary(tmp_path / "ray")[0]
    assert a.keys() == b.keys() and a["method"].tolist() == ["rlink", "oracle"]
    # An untrained solver is far from the oracle: equal columns below are not two copies of one answer.
    assert a["oracle/sigma_sup_rel_error"][0] > 1e-3 and a["sigma0"][0] != a["sigma0"][1]
    for name in a:
        if name != "wall_time_s":
            assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name
