"""The adaptive schedule of the reinforcement-link solver: its exact market step, its mixing, its stopping rule."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch

import marketeq
from marketeq.model.brownian import BrownianSource
from marketeq.model.market import MarketModel
from marketeq.model.rollout import roll_holdings
from marketeq.oracles import RiccatiOracle
from marketeq.scenario import ROUNDS_ONLY, ScenarioError, SolverSettings
from marketeq.solvers.fixed_point import AndersonMixer, fit_volatility


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
    result = marketeq.solve(adaptive.replace(**{"solver.max_rounds": 1, "solver.tolerance": 1e-9}))
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


def test_adaptive_scenario_errors_are_one_line(adaptive):
    with pytest.raises(ScenarioError) as info:
        adaptive.replace(**{"solver.mu_mode": "learned"})
    assert "\n" not in str(info.value) and "solver.mu_mode" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        adaptive.replace(**{"solver.method": "joint"})
    assert "solver.schedule" in str(info.value)
