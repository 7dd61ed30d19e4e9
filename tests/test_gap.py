"""The equilibrium gap: zero at the Riccati equilibrium, positive for a perturbed policy, against the exact
discrete-time best response of the linear-quadratic problem; the /gap group and ``marketeq gap``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import marketeq
from marketeq.cli import main
from marketeq.gap import best_response_gap, rebuild_market, result_gap
from marketeq.hdf5 import ResultFileError, read_gap, write_gap
from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.model.rollout import simulate
from marketeq.oracles import LeadingOrderOracle, RiccatiOracle

ITERATIONS = 40
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def lq_gap(model: MarketModel, oracle: RiccatiOracle, n: int, scale: float = 1.0) -> float:
    """Exact value of agent n's best response minus its value under the policy, in discrete time (Euler grid),
    when every agent trades ``scale`` times the Riccati feedback: backward Riccati recursions on the state
    z = (1, D, W, x) with x the agent's own holding (E[z' P z] + c, no sampling)."""
    N, dt, lam = model.n_agents, model.dt, model.cost.lam
    A, b = (scale * t.numpy() for t in oracle.feedback())
    sigma = oracle.sigma_curve(model.times.numpy())
    g, xi, phibar = model.gamma.numpy(), model.xi.numpy(), model.phibar.numpy()
    d, iD, iW, ix = N + 3, slice(1, N + 1), N + 1, N + 2
    ex, eW = np.eye(d)[ix], np.eye(d)[iW]
    P, c, Po, co = np.zeros((d, d)), 0.0, np.zeros((d, d)), 0.0
    for k in reversed(range(model.n_steps)):
        s = sigma[k]
        mu = np.zeros(d)  # mu_k = mu . z (return identity, linear in phi = phibar + D)
        mu[0], mu[iD], mu[iW] = s * s / N * (g * phibar).sum(), s * s / N * g, s / N * (g * xi).sum()
        risk = s * ex + xi[n] * eW  # sigma x + xi_n W
        Q = 0.5 * (np.outer(mu, ex) + np.outer(ex, mu)) - 0.5 * g[n] * np.outer(risk, risk)
        M = np.eye(d)
        M[iD, iD] += dt * A[k]
        M[iD, iW] += dt * b[k]
        a = -0.5 * lam * dt + dt * dt * ex @ P @ ex
        v = dt * M.T @ P @ ex
        c += dt * eW @ P @ eW
        P = Q * dt + M.T @ P @ M - np.outer(v, v) / a
        own = np.zeros(d)  # the agent's own rate, A_k[n] D + b_k[n] W
        own[iD], own[iW] = A[k][n], b[k][n]
        Mo = M + dt * np.outer(ex, own)
        co += dt * eW @ Po @ eW
        Po = Q * dt - 0.5 * lam * dt * np.outer(own, own) + Mo.T @ Po @ Mo
    z0 = np.zeros(d)
    z0[0], z0[ix] = 1.0, phibar[n]
    return float(z0 @ P @ z0 + c - z0 @ Po @ z0 - co)


def scaled_policy_paths(model: MarketModel, oracle: RiccatiOracle, brownian, scale: float):
    A, b = oracle.feedback()
    sigma = torch.as_tensor(oracle.sigma_curve(model.times.numpy()))
    return simulate(model, brownian, lambda k, D, W: scale * (D @ A[k].T + W.unsqueeze(-1) * b[k]),
                    sigma=lambda D, W: sigma, mu=lambda D, W, phi, s: model.return_identity(s, phi, W),
                    s0=oracle.s0).numpy()


@pytest.fixture(scope="module")
def market(quickstart):
    model = MarketModel.from_scenario(quickstart)  # three agents, K = 50, float64
    return model, RiccatiOracle(model)


def test_discrete_gap_of_the_oracle_is_a_discretisation_effect(quickstart, market):
    model, oracle = market
    exact = [lq_gap(model, oracle, n) for n in range(3)]
    coarse_model = MarketModel.from_scenario(quickstart.replace(**{"market.steps": 20}))
    coarse = [lq_gap(coarse_model, RiccatiOracle(coarse_model), n) for n in range(3)]
    assert all(0 < e < c / 4 for e, c in zip(exact, coarse, strict=True))  # O(dt^2)
    assert all(lq_gap(model, oracle, n, 0.8) > 5 * exact[n] for n in range(3))


def test_gap_is_statistically_zero_at_the_riccati_oracle(quickstart, market):
    model, oracle = market
    result = marketeq.oracle_result(quickstart.replace(**{"run.test_paths": 1000}))
    report = result_gap(result, ITERATIONS)
    assert "fresh" in report.training and report.eval_paths == report.valid_paths == 1000
    assert report.train_paths == 4000  # TRAIN_FACTOR times the test set
    exact = np.array([lq_gap(model, oracle, n) for n in range(3)])
    assert np.all(report.gap <= exact + 3 * report.gap_se)  # no policy beats the exact best response
    assert abs(report.total_gap) < exact.sum() + 3 * report.total_gap_se
    assert report.total_gain > 0.3 and abs(report.ratio) < 0.005  # below 0.5% of the gain over not trading
    assert report.gain.sum() == pytest.approx(report.total_gain)


def test_gap_is_clearly_positive_for_a_perturbed_policy(market):
    model, oracle = market
    train, valid, test = (scaled_policy_paths(model, oracle, brownian_test_set(seed, n, model.n_steps,
                                                                               model.dt), 0.8)
                          for seed, n in ((1, 1000), (3, 1000), (2, 4000)))
    report = best_response_gap(model, train, test, ITERATIONS, validate=valid)
    exact = np.array([lq_gap(model, oracle, n, 0.8) for n in range(3)])
    assert report.total_gap > 5 * report.total_gap_se
    assert np.all(report.gap > 2 * report.gap_se)
    assert 0.6 * exact.sum() < report.total_gap < exact.sum() + 3 * report.total_gap_se
    assert report.ratio > 0.008


def test_without_a_rebuilt_market_the_test_paths_are_split(quickstart):
    result = marketeq.oracle_result(quickstart.replace(**{"run.test_paths": 600, "market.steps": 20}))
    result = dataclasses.replace(result, solver="custom")  # nothing to rebuild it from
    report = result_gap(result, 10)
    assert report.train_paths == 225 and report.valid_paths == 75 and report.eval_paths == 300
    assert "first 300 of the 600" in report.training


def test_the_kept_iterate_does_not_lose_out_of_sample_at_an_equilibrium(market):
    """Few training paths: the last iterate over-fits them and loses on the test paths at the Riccati
    equilibrium; the iterate kept on validation paths does not, and still finds a perturbed policy's gap."""
    model, oracle = market
    train, valid, test = (scaled_policy_paths(model, oracle, brownian_test_set(seed, n, model.n_steps,
                                                                               model.dt), 1.0)
                          for seed, n in ((1, 150), (3, 1000), (2, 2000)))
    last = best_response_gap(model, train, test, 60, select=False)
    assert last.total_gap < -3 * last.total_gap_se and last.valid_paths == 0
    assert np.all(last.selected == 60)
    kept = best_response_gap(model, train, test, 60, validate=valid)
    exact = sum(lq_gap(model, oracle, n) for n in range(3))  # the Euler grid's own small positive gap
    assert -2 * kept.total_gap_se <= kept.total_gap <= exact + 3 * kept.total_gap_se
    assert kept.valid_paths == 1000 and kept.train_paths == 150 and np.all(kept.selected % 10 == 0)
    perturbed = (scaled_policy_paths(model, oracle, brownian_test_set(seed, n, model.n_steps, model.dt), 0.8)
                 for seed, n in ((1, 150), (3, 1000), (2, 2000)))
    train, valid, test = perturbed
    report = best_response_gap(model, train, test, 60, validate=valid)
    exact = sum(lq_gap(model, oracle, n, 0.8) for n in range(3))
    assert report.total_gap > max(3 * report.total_gap_se, 0.5 * exact) and np.all(report.selected > 0)


@pytest.mark.parametrize("profile", ["free", "shared"])
def test_a_solver_run_is_rebuilt_from_its_weights(tiny, profile):
    short = tiny.replace(**{"solver.rounds": 1, "solver.agents_iterations": [10],
                            "solver.market_iterations": [10], "run.test_paths": 100,
                            "solver.rate_profile": profile})
    result = marketeq.solve(short)
    model = MarketModel.from_scenario(result.scenario)
    again = rebuild_market(result, model)
    assert again is not None
    brownian = brownian_test_set(short.run.seed, 100, model.n_steps, model.dt)
    np.testing.assert_allclose(again(brownian).numpy().phi, result.paths.phi, rtol=1e-10, atol=1e-12)
    broken = dataclasses.replace(result, weights={"policy": {k: v + 0.1 for k, v in
                                                             result.weights["policy"].items()},
                                                  "market": result.weights["market"]})
    assert rebuild_market(broken, model) is None  # does not reproduce the stored paths: not used


def test_an_adaptive_run_is_rebuilt_from_its_weights(quickstart):
    """The default schedule's answer (grids extrapolated) is rebuilt, so its gap faces the run's own market."""
    result = marketeq.solve(quickstart.replace(**{"market.steps": 20, "run.test_paths": 100,
                                                  "run.device": "cpu", "run.dtype": "float64"}))
    assert result.metrics["convergence/grids"].value >= 2
    model = MarketModel.from_scenario(result.scenario)
    again = rebuild_market(result, model)
    assert again is not None
    brownian = brownian_test_set(result.scenario.run.seed, 100, model.n_steps, model.dt)
    np.testing.assert_allclose(again(brownian).numpy().phi, result.paths.phi, rtol=1e-9, atol=1e-12)


def test_gap_group_round_trip(tmp_path, quickstart):
    result = marketeq.oracle_result(quickstart.replace(**{"run.test_paths": 100, "market.steps": 10}))
    path = marketeq.write_result(result, tmp_path / "r.h5")
    assert read_gap(path) is None
    report = result_gap(result, 2)
    write_gap(report, path)
    write_gap(dataclasses.replace(report, iterations=3), path)  # replaces the group
    back = read_gap(path)
    assert back.iterations == 3 and back.agents == report.agents and back.training == report.training
    np.testing.assert_array_equal(back.selected, report.selected)
    assert back.valid_paths == report.valid_paths == 100
    np.testing.assert_array_equal(back.gap_se, report.gap_se)
    assert back.total_gain == report.total_gain and back.ratio == pytest.approx(report.ratio)
    assert marketeq.read_result(path).metrics.keys() == result.metrics.keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]
    with pytest.raises(ResultFileError):
        write_gap(report, tmp_path / "missing.h5")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "marketeq", *args], capture_output=True, text=True,
                          timeout=300)


def test_gap_command_refuses_bad_files_in_one_line(tmp_path, capsys, quickstart):
    bad = tmp_path / "bad.h5"
    bad.write_text("not a result")
    result = marketeq.oracle_result(quickstart.replace(**{"run.test_paths": 20, "market.steps": 5}))
    result.paths.mu[:, 3] = np.nan
    diverged = marketeq.write_result(dataclasses.replace(result, status="diverged"), tmp_path / "nan.h5")
    for target in (bad, tmp_path / "missing.h5", diverged):
        assert main(["gap", str(target)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(target) in err and "Traceback" not in err
    assert main(["gap", str(bad), "--iterations", "-1"]) == 2


def test_gap_command(tmp_path, quickstart):
    result = marketeq.oracle_result(quickstart.replace(**{"run.test_paths": 200, "market.steps": 10}))
    path = marketeq.write_result(result, tmp_path / "r.h5")
    done = run_cli("gap", str(path), "--iterations", "3", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["agents"] == list(quickstart.agent_names) and data["iterations"] == 3
    assert data["total_gain"] > 0 and len(data["gap_se"]) == 3
    assert read_gap(path).total_gap == pytest.approx(data["total_gap"])
    table = run_cli("gap", str(path), "--iterations", "3", "--no-write")
    assert table.returncode == 0, table.stderr
    assert "equilibrium gap" in table.stdout and "Traceback" not in table.stderr


def test_power_cost_best_response_beats_the_leading_order_rates():
    """q = 3/2: the nonlinear best response starts from the recorded policy (zero gap before training) and
    finds what the infinite-horizon approximation leaves on the table."""
    scenario = marketeq.load_scenario(SCENARIOS / "paper_e2_power_2_agents.toml")
    model = MarketModel.from_scenario(scenario.replace(**{"market.steps": 25}))
    oracle = LeadingOrderOracle(model)
    train, test = (oracle.paths(brownian_test_set(seed, n, model.n_steps, model.dt)).numpy()
                   for seed, n in ((1, 600), (2, 1000)))
    assert np.all(best_response_gap(model, train, test, 0).gap == 0)
    report = best_response_gap(model, train, test, 40)
    assert np.all(report.gap > 5 * report.gap_se) and 0.005 < report.ratio < 0.2
