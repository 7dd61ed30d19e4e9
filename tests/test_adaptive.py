"""The adaptive schedule of the reinforcement-link solver: its exact market step, its mixing, its stopping rule."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch

import marketeq
from marketeq.model.brownian import BrownianSource, moment_matched, refine
from marketeq.model.market import MarketModel
from marketeq.model.rollout import roll_holdings
from marketeq.oracles import RiccatiOracle
from marketeq.scenario import ROUNDS_ONLY, ScenarioError, SolverSettings
from marketeq.solvers.fixed_point import AndersonMixer, fit_volatility, solve_volatility


@pytest.fixture(scope="module")
def adaptive(quickstart):
    """The quickstart market on a 20-step grid, float64, with the adaptive schedule on few paths."""
    return quickstart.replace(**{
        "market.steps": 20, "run.dtype": "float64", "run.test_paths": 500, "run.device": "cpu",
        "solver": {"schedule": "adaptive", "batch_size": 512, "agents_hidden": [16, 16], "tolerance": 1e-3,
                   "max_rounds": 12},
    })


@pytest.fixture(scope="module")
def adaptive_result(adaptive, single_thread):
    return marketeq.solve(adaptive)


def test_exact_rates_give_the_exact_volatility_at_the_right_end_of_each_step(quickstart):
    """With the Riccati rates, the least-squares market step recovers the oracle's sigma on the grid
    (the discretisation floor: well under the 1.4% that a left-end volatility leaves at the last step)."""
    model = MarketModel.from_scenario(quickstart, "cpu", torch.float64)
    oracle = RiccatiOracle(model)
    A, b = oracle.feedback()
    paths = BrownianSource(3, model.n_steps, model.dt, model.device, torch.float64).draw(2000)
    phi, _ = roll_holdings(model, paths.W, lambda k, D, W: D @ A[k].T + W.unsqueeze(-1) * b[k])
    exact = torch.as_tensor(oracle.sigma_curve(model.times.numpy()))
    mu = model.return_identity(exact.expand(paths.W.shape), phi, paths.W)
    sigma, s0 = fit_volatility(model, mu, paths.W, paths.dW)
    assert float(((sigma - exact) / exact).abs().max()) < 3e-3
    assert abs(float(sigma[-1]) - model.alpha) < 1e-6  # sigma_T = alpha comes out, it is not imposed
    assert abs(float(s0) - oracle.s0) < 5e-4


def test_anderson_mixing_solves_a_slow_linear_fixed_point_in_few_steps():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    A = torch.as_tensor(q @ np.diag(np.linspace(0.5, 0.95, 8)) @ q.T)  # plain iteration closes 5% a step
    b = torch.as_tensor(rng.normal(size=8))
    fixed = torch.linalg.solve(torch.eye(8, dtype=A.dtype) - A, b)
    mixer, x = AndersonMixer(depth=8), torch.zeros(8, dtype=torch.float64)
    for _ in range(12):
        x = mixer.update(x, A @ x + b)
    plain = torch.zeros(8, dtype=torch.float64)
    for _ in range(12):
        plain = A @ plain + b
    assert float((x - fixed).abs().max()) < 1e-6 < float((plain - fixed).abs().max())


def test_adaptive_run_converges_near_the_riccati_oracle_and_says_so(adaptive_result):
    result = adaptive_result
    m = result.metrics
    assert result.status == "completed"
    assert result.message.startswith("converged in ")
    assert m["convergence/converged"].value == 1.0
    assert m["convergence/sigma_change"].value <= 1e-3
    # 20 Euler steps: the discrete equilibrium itself is about 1% from the continuous sigma here
    assert m["oracle/sigma_sup_rel_error"].value < 0.02
    assert m["oracle/mu0_rel_error"].value < 0.03
    assert m["oracle/rates_rel_mse"].value < 0.02
    assert m["clearing"].value < 1e-20  # clearing is built into the policy
    assert np.isfinite(result.history["market/sigma_change"]).sum() == m["convergence/rounds"].value


def test_a_budget_too_small_ends_budget_exhausted_with_a_valid_result(adaptive, tmp_path, single_thread):
    """Quadratic costs take one round per grid: the budget that runs out is the time (spent after the first)."""
    result = marketeq.solve(adaptive.replace(**{"solver.max_minutes": 1e-6}))
    assert result.status == "completed"
    assert result.message.startswith("budget_exhausted after 1 rounds")
    assert "\n" not in result.message
    assert result.metrics["convergence/converged"].value == 0.0
    marketeq.write_result(result, tmp_path / "r.h5")
    again = marketeq.read_result(tmp_path / "r.h5")
    assert again.message == result.message
    assert again.metrics["convergence/rounds"].value == 1.0


@pytest.mark.parametrize("name", ROUNDS_ONLY)
def test_the_adaptive_schedule_refuses_settings_it_does_not_read(name):
    field = SolverSettings.model_fields[name]
    default = field.default
    if isinstance(default, bool):
        value = not default
    elif isinstance(default, int | float):
        value = default + 1
    elif isinstance(default, list):
        value = [*default, default[-1]]
    else:  # a choice: any other allowed value
        value = next(v for v in typing.get_args(field.annotation) if v != default)
    with pytest.raises(ValueError) as info:
        SolverSettings(schedule="adaptive", **{name: value})
    assert f"solver.{name}" in str(info.value) and "schedule = 'rounds'" in str(info.value)


def test_auto_picks_the_adaptive_schedule_unless_a_setting_of_the_rounds_schedule_is_given(quickstart):
    assert quickstart.solver.schedule == "auto" and quickstart.solver.adaptive
    assert quickstart.solver.mu_source == "implied"
    rounds = quickstart.replace(**{"solver.rounds": 3})
    assert not rounds.solver.adaptive and rounds.solver.mu_source == "learned"
    assert not quickstart.replace(**{"solver.mu_mode": "learned"}).solver.adaptive
    assert not quickstart.replace(**{"solver.method": "joint"}).solver.adaptive
    assert quickstart.replace(**{"solver.mu_mode": "known"}).solver.adaptive
    assert rounds.replace(**{"solver.rounds": 10}).solver.adaptive  # back to every default: adaptive again
    with pytest.raises(ScenarioError) as info:  # a setting of the schedule that is not chosen is refused
        quickstart.replace(**{"solver.rounds": 3, "solver.tolerance": 1e-3})
    assert "solver.tolerance" in str(info.value) and "\n" not in str(info.value)


def test_adaptive_scenario_errors_are_one_line(adaptive):
    with pytest.raises(ScenarioError) as info:
        adaptive.replace(**{"solver.mu_mode": "learned"})
    assert "\n" not in str(info.value) and "solver.mu_mode" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        adaptive.replace(**{"solver.method": "joint"})
    assert "solver.schedule" in str(info.value)


def _family_like(quickstart: marketeq.Scenario) -> marketeq.Scenario:
    """Strong frictions and endowments: the exact volatility stays far below alpha (about 0.04 alpha at t_0),
    the regime where the volatility amplifies every error of the agents' response."""
    text = ('name = "low_sigma"\n[market]\nalpha = 1.0\nbeta = 2.0\nsupply = 1.0\nhorizon = 0.38\nsteps = 40\n'
            '[frictions]\nlambda = 0.1\nq = 2.0\n[[agents]]\ngamma = 2.2\nxi = 14.4\n[[agents]]\ngamma = 1.3\n'
            'xi = -14.4\n[run]\nseed = 0\n')
    return marketeq.load_scenario("low_sigma.toml", text=text)


def test_the_backward_market_solve_is_the_fixed_point_of_the_sweeps(quickstart):
    """One backward pass gives what sweeping ``sigma -> mu -> fit`` converges to, where the sweeps converge."""
    model = MarketModel.from_scenario(quickstart, "cpu", torch.float64)
    A, b = RiccatiOracle(model).feedback()
    paths = BrownianSource(4, model.n_steps, model.dt, model.device, torch.float64).draw(1500)
    phi, _ = roll_holdings(model, paths.W, lambda k, D, W: D @ A[k].T + W.unsqueeze(-1) * b[k])
    sigma, s0 = solve_volatility(model, phi, paths.W, paths.dW)
    swept = torch.full_like(sigma, model.alpha)
    for _ in range(200):
        mu = model.return_identity(swept.expand(paths.W.shape), phi, paths.W)
        swept, swept_s0 = fit_volatility(model, mu, paths.W, paths.dW)
    assert float((sigma - swept).abs().max()) < 1e-3 * model.alpha  # sweeps fit every noisy later slope
    assert abs(float(s0 - swept_s0)) < 1e-3


def test_the_backward_market_solve_stays_positive_where_the_sweeps_overshoot(quickstart):
    scenario = _family_like(quickstart)
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    oracle = RiccatiOracle(model)
    A, b = oracle.feedback()
    paths = moment_matched(BrownianSource(5, model.n_steps, model.dt, model.device, torch.float64).draw(400),
                           model.dt)
    phi, _ = roll_holdings(model, paths.W, lambda k, D, W: D @ A[k].T + W.unsqueeze(-1) * b[k])
    sigma, _ = solve_volatility(model, phi, paths.W, paths.dW)
    exact = torch.as_tensor(oracle.sigma_curve(model.times.numpy()))
    assert bool((sigma > 0).all())
    # first order in the step: about 15% on 40 steps at this stiffness; far from the factor the sweeps reach
    assert float(((sigma - exact) / exact).abs().max()) < 0.3


def test_moment_matched_paths_have_exact_first_and_second_moments():
    dt = 0.01
    raw = BrownianSource(6, 30, dt, torch.device("cpu"), torch.float64).draw(100)
    matched = moment_matched(raw, dt)
    assert matched.dW.shape == (200, 30)
    assert float(matched.dW.mean(0).abs().max()) < 1e-12
    covariance = matched.dW.T @ matched.dW / matched.dW.shape[0]
    assert float((covariance - dt * torch.eye(30, dtype=torch.float64)).abs().max()) < 1e-12
    assert torch.allclose(matched.W[:, 1:], matched.dW.cumsum(1))


def test_refined_paths_keep_the_coarse_points_and_split_each_step_as_a_bridge():
    dt = 0.02
    coarse = BrownianSource(7, 25, dt, torch.device("cpu"), torch.float64).draw(4000)
    fine = refine(coarse, dt, seed=1)
    assert fine.dW.shape == (4000, 50)
    assert torch.allclose(fine.W[:, ::2], coarse.W, atol=1e-12)
    variance = float(fine.dW.var())
    assert abs(variance / (dt / 2) - 1) < 0.03  # each half step has variance dt/2


def test_a_strong_friction_run_extrapolates_in_the_step_and_reports_its_error(quickstart, single_thread):
    """Where the volatility is 0.04 alpha, one 40-step grid leaves a first-order error of several per cent;
    the run solves finer grids, extrapolates, and reports the estimated time-step error in its verdict."""
    scenario = _family_like(quickstart).replace(**{
        "run.dtype": "float64", "run.test_paths": 400, "run.device": "cpu",
        "solver": {"schedule": "adaptive", "batch_size": 256, "agents_hidden": [16, 16], "max_rounds": 15}})
    result = marketeq.solve(scenario)
    m = result.metrics
    assert m["convergence/grids"].value >= 2
    assert "time-step error" in result.message
    assert m["convergence/time_step_error"].value > 0
    assert m["oracle/sigma_sup_rel_error"].value < 0.03  # one 40-step grid alone: about 9%
