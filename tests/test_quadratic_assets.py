"""The d-asset sweep for quadratic costs: one asset is the one-asset sweep, diagonal markets split into
one-asset ones, the sweep is the fixed point of best response and market, and refined grids tend to the
matrix-Riccati oracle at first order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import marketeq
from marketeq.model.market import MarketModel
from marketeq.oracles.assets_market import AssetsMarket
from marketeq.oracles.riccati_assets import RiccatiAssets
from marketeq.solvers import quadratic
from marketeq.solvers.quadratic_assets import AssetsProblem, best_response, equilibrium_sweep, market_of

A3 = np.array([[1.0, 0.0, 0.0], [0.4, 0.9, 0.0], [0.3, 0.2, 1.2]])


def _problem(steps: int, n: int = 4, d: int = 3, seed: int = 0, lam: np.ndarray | None = None,
             xi: np.ndarray | None = None, A: np.ndarray | None = None, gamma: np.ndarray | None = None,
             horizon: float = 0.2) -> AssetsProblem:
    """A market with correlated A, a full cost matrix and full endowment loadings (unless given)."""
    rng = np.random.default_rng(seed)
    if xi is None:
        xi = rng.normal(0.0, 8.0, (n, d, d))
        xi = xi - xi.mean(0)
    if lam is None:
        root = rng.normal(0.0, 0.05, (d, d))
        lam = root @ root.T + 1e-2 * np.eye(d)
    gamma = np.linspace(1.0, 2.0, n) if gamma is None else gamma
    market = AssetsMarket.check(gamma, xi, A3[:d, :d] if A is None else A, np.linspace(1.0, 2.0, d),
                                np.linspace(2.0, 1.0, d), horizon, steps)
    return AssetsProblem(market, lam)


def _one_asset_model(alpha: float, beta: float, supply: float, lam: float, gammas, xis, steps: int,
                     horizon: float = 0.2) -> MarketModel:
    rows = "".join(f"[[agents]]\ngamma = {g!r}\nxi = {x!r}\n" for g, x in zip(gammas, xis, strict=True))
    text = (f'name = "one"\n[market]\nalpha = {alpha!r}\nbeta = {beta!r}\nsupply = {supply!r}\n'
            f"horizon = {horizon}\nsteps = {steps}\n[frictions]\nlambda = {lam!r}\nq = 2.0\n{rows}")
    return MarketModel.from_scenario(marketeq.load_scenario("one.toml", text=text), "cpu", torch.float64)


def _one_asset(problem: AssetsProblem, i: int) -> MarketModel:
    m = problem.market
    return _one_asset_model(float(m.A[i, i]), float(m.beta[i]), float(m.supply[i]),
                            float(problem.lam[i, i]), [float(g) for g in m.gamma],
                            [float(x) for x in m.xi[:, i, i]], m.steps, m.horizon)


def test_one_asset_is_the_one_asset_sweep():
    problem = _problem(60, n=5, d=1, seed=3, lam=np.array([[2.5e-2]]))
    mine = equilibrium_sweep(problem)
    theirs = quadratic.equilibrium_sweep(_one_asset(problem, 0))
    assert np.abs(mine.sigma[:, 0, 0] - theirs.sigma.numpy()).max() < 1e-12
    assert np.abs(mine.A - theirs.A.numpy()).max() < 1e-12 * (1 + np.abs(mine.A).max())
    assert np.abs(mine.a[..., 0] - theirs.a.numpy()).max() < 1e-12 * (1 + np.abs(mine.a).max())
    assert np.abs(mine.b - theirs.b.numpy()).max() < 1e-12 * (1 + np.abs(mine.b).max())
    assert abs(float(mine.s0[0]) - float(theirs.s0)) < 1e-12
    assert np.ptp(mine.sigma[:, 0, 0]) > 0.05  # an endogenous volatility, not A throughout


def test_a_diagonal_market_is_one_one_asset_market_per_asset():
    n, d = 4, 2
    xi = np.zeros((n, d, d))
    xi[:, 0, 0], xi[:, 1, 1] = [8.0, -5.0, 2.0, -5.0], [-3.0, 6.0, -4.0, 1.0]
    problem = _problem(50, n=n, d=d, lam=np.diag([1e-2, 5e-2]), xi=xi, A=np.diag([1.0, 0.6]))
    mine = equilibrium_sweep(problem)
    assert np.abs(mine.sigma[:, 0, 1]).max() < 1e-14 and np.abs(mine.sigma[:, 1, 0]).max() < 1e-14
    for i in range(d):
        theirs = quadratic.equilibrium_sweep(_one_asset(problem, i))
        assert np.abs(mine.sigma[:, i, i] - theirs.sigma.numpy()).max() < 1e-12
        assert abs(float(mine.s0[i]) - float(theirs.s0)) < 1e-12
        rows = np.arange(n) * d + i  # agent n's rate in asset i depends on the deviations in asset i only
        assert np.abs(mine.A[:, rows][:, :, rows] - theirs.A.numpy()).max() < 1e-12 * np.abs(mine.A).max()
        assert np.abs(mine.a[:, rows, i] - theirs.a.numpy()).max() < 1e-12 * np.abs(mine.a).max()
    assert np.ptp(mine.sigma[:, 1, 1]) > 0.005


def _forward_market(problem: AssetsProblem, A, a, b) -> np.ndarray:
    """The volatility of a feedback by forward sensitivities (not the sweep's adjoint): ``dD_j/d dW_k`` for
    every pair, then the terminal condition's loading of each ``dW_k``, solved backward."""
    m, d, nd = problem.market, problem.d, problem.nd
    K, dt = m.steps, m.dt
    sens = np.zeros((K + 1, K, nd, d))  # dD_j / d dW_k
    for j in range(K):
        sens[j + 1] = sens[j] + dt * np.einsum("ab,kbc->kac", A[j], sens[j])
        sens[j + 1, :j] += dt * a[j]  # W_j contains dW_k for k < j
    slopes = np.einsum("ai,jkac->jkic", problem.weights, sens)  # dP_j / d dW_k, (K+1, K, d, d)
    sigma = np.zeros((K + 1, d, d))
    sigma[K] = m.A
    for k in range(K - 2, -1, -1):  # the loading of dW_k: Sigma_{k+1} + dt sum_{j=k+1}^{K-1} dmu_j/d dW_k = A
        total = np.zeros((d, d))
        for j in range(k + 2, K):
            total += sigma[j] @ sigma[j].T @ slopes[j, k] + sigma[j] @ problem.exposure
        rhs = m.A - dt * total
        sigma[k + 1] = rhs @ np.linalg.inv(np.eye(d) + dt * problem.exposure)
    return sigma


def test_the_sweep_is_the_fixed_point_of_best_response_and_market():
    problem = _problem(30, n=4, d=3, seed=1)
    eq = equilibrium_sweep(problem)
    response = best_response(problem, eq.sigma)
    for mine, theirs in zip((eq.A, eq.a, eq.b), response, strict=True):
        assert np.abs(mine - theirs).max() < 1e-10 * (1.0 + np.abs(theirs).max())
    sigma, s0 = market_of(problem, *response)
    scale = np.abs(eq.sigma).max()
    assert np.abs(sigma - eq.sigma).max() < 1e-10 * scale and np.abs(s0 - eq.s0).max() < 1e-10
    forward = _forward_market(problem, *response)
    assert np.abs(forward[1:] - eq.sigma[1:]).max() < 1e-10 * scale
    assert np.abs(eq.sigma[-1] - problem.market.A).max() == 0.0
    assert np.abs(eq.sigma[0] - problem.market.A).max() > 0.05 * scale  # far from frictionless: a real test
    # a volatility the agents do not face is not a fixed point
    moved, _ = market_of(problem, *best_response(problem, 0.9 * eq.sigma))
    assert np.abs(moved - eq.sigma).max() > 1e-3 * scale


def test_the_rates_clear_asset_by_asset():
    problem = _problem(20, n=5, d=3, seed=2)
    eq = equilibrium_sweep(problem)
    per_asset = (eq.A.reshape(21, 5, 3, -1).sum(1), eq.a.reshape(21, 5, 3, 3).sum(1),
                 eq.b.reshape(21, 5, 3).sum(1))
    assert max(float(np.abs(x).max()) for x in per_asset) < 1e-12 * np.abs(eq.A).max()


@pytest.mark.parametrize("seed", [0, 4])
def test_refined_grids_tend_to_the_matrix_riccati_oracle_at_first_order(seed):
    base, errors, answers = 40, [], []
    problem = _problem(base, n=4, d=3, seed=seed)
    m = problem.market
    oracle = RiccatiAssets(m.gamma, m.xi, m.A, problem.lam, m.supply, m.beta, m.horizon, base)
    exact = oracle.sigma[:-1]
    scale = np.abs(exact).max(axis=(1, 2))
    for steps in (base, 2 * base, 4 * base):
        fine = _problem(steps, n=4, d=3, seed=seed)
        answers.append(equilibrium_sweep(fine).sigma[:: steps // base][:-1])
        errors.append(float((np.abs(answers[-1] - exact).max(axis=(1, 2)) / scale).max()))
    assert 1.6 < errors[0] / errors[1] < 2.4 and 1.6 < errors[1] / errors[2] < 2.4, errors
    extrapolated = 2.0 * answers[2] - answers[1]
    assert float((np.abs(extrapolated - exact).max(axis=(1, 2)) / scale).max()) < 0.3 * errors[2]


def test_the_default_run_of_the_separable_market_matches_two_one_asset_oracles():
    """``marketeq.solve`` on two independent assets: each asset's volatility and return within the must-show's
    0.5% and 1% of its one-asset Riccati oracle (measured: 1e-5), rates that clear exactly, a verdict."""
    from marketeq.scenario_files import load_scenario
    from tests.test_assets_results import SCENARIOS

    scenario = load_scenario(SCENARIOS / "assets_2_separable.toml").replace(**{"run.test_paths": 64})
    result = marketeq.solve(scenario)
    m, p = result.metrics, result.paths
    assert result.status == "completed" and result.message.startswith("converged on grids of 100/")
    assert m["convergence/converged"].value == 1.0 and m["convergence/time_step_error"].value <= 2e-3
    assert m["clearing"].value < 1e-20 and p.sigma.shape == (64, 101, 2, 2)
    for i in range(2):
        alone = marketeq.oracle_result(scenario.one_asset(i))
        exact = alone.paths.sigma.mean(0)[:-1]
        assert np.abs(p.sigma[0, :-1, i, i] / exact - 1.0).max() < 5e-3
        assert abs(p.mu[:, 0, i].mean() / alone.metrics["mu0"].value - 1.0) < 1e-2  # deterministic at t = 0
    assert m["oracle/sigma_sup_rel_error"].value < 5e-3 and m["oracle/mu0_rel_error"].value < 1e-2


def test_power_costs_on_several_assets_are_refused_in_one_line():
    from marketeq.scenario_files import load_scenario
    from tests.test_assets_results import SCENARIOS

    with pytest.raises(marketeq.ScenarioError, match=r"frictions.q = 1.5.*market.assets = 3.*power costs"):
        marketeq.solve(load_scenario(SCENARIOS / "assets_3_power.toml"))


def test_a_stop_ends_the_run_after_the_grid_in_progress_with_its_answer():
    from marketeq.scenario_files import load_scenario
    from tests.test_assets_results import SCENARIOS

    events = []
    control = marketeq.RunControl()
    control.request_stop()
    scenario = load_scenario(SCENARIOS / "assets_2_separable.toml").replace(**{"run.test_paths": 16})
    log = type("Log", (), {"on_event": lambda _, e: events.append(e)})()
    result = marketeq.solve(scenario, callbacks=[log], control=control)
    m = result.metrics
    assert result.status == "interrupted" and result.message.startswith("stopped after grids of 100 steps")
    assert m["convergence/grids"].value == 1.0 and m["convergence/converged"].value == 0
    names = ["RunStarted", "PhaseStarted", "IterationEnded", "PhaseEnded", "RunEnded"]
    assert [type(e).__name__ for e in events] == names
    assert events[-1].status == "interrupted"
    assert result.metrics["oracle/sigma_sup_rel_error"].value < 5e-3  # one grid: first order, 0.1%-ish


def test_a_coarse_grid_is_refined_until_the_estimated_error_is_met_and_the_estimate_is_honest():
    """K = 10 on assets_3_quadratic needs three grids; the extrapolation's estimated error (7.3e-4) is the
    size of its actual error against the oracle (6.7e-4), and both are within the 2e-3 tolerance."""
    from marketeq.scenario_files import load_scenario
    from tests.test_assets_results import SCENARIOS

    scenario = load_scenario(SCENARIOS / "assets_3_quadratic.toml").replace(
        **{"run.test_paths": 16, "market.steps": 10})
    m = marketeq.solve(scenario).metrics
    assert m["convergence/grids"].value == 3.0 and m["convergence/converged"].value == 1.0
    estimate, actual = m["convergence/time_step_error"].value, m["oracle/sigma_sup_rel_error"].value
    assert actual <= 2e-3 and 0.5 < estimate / actual < 2.0
