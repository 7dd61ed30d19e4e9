"""The closed-form expectations of a linear policy equal the sample means over moment-matched paths."""

from __future__ import annotations

import torch

from marketeq.model.brownian import BrownianSource, moment_matched
from marketeq.model.market import MarketModel
from marketeq.model.rollout import roll_holdings
from marketeq.solvers.fixed_point import expected_s0, solve_volatility, volatility_pass, welfare
from marketeq.solvers.moments import expected_welfare, identity_moments, linear_moments, return_slopes


def random_feedback(model: MarketModel, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-sum linear feedback ``(A, a, b)`` far from zero, so every term of the objective matters."""
    g = torch.Generator().manual_seed(seed)
    n, points = model.n_agents, model.n_steps + 1
    A = torch.randn(points, n, n, generator=g, dtype=torch.float64) * 2.0
    a, b = (torch.randn(points, n, generator=g, dtype=torch.float64) * 3.0 for _ in range(2))
    return A - A.mean(-2, keepdim=True), a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)


def feedback_rates(A, a, b):
    return lambda k, D, W: D @ A[k].T + W.unsqueeze(-1) * a[k] + b[k]


def _linear_setup(quickstart, paths: int):
    model = MarketModel.from_scenario(quickstart.replace(**{"market.steps": 24}), "cpu", torch.float64)
    gains = random_feedback(model)
    brownian = moment_matched(BrownianSource(3, model.n_steps, model.dt, model.device, torch.float64).draw(paths),
                              model.dt)
    phi, phidot = roll_holdings(model, brownian.W, feedback_rates(*gains))
    return model, gains, brownian, phi, phidot


def test_expected_welfare_is_the_mean_over_moment_matched_paths(quickstart):
    model, gains, brownian, phi, phidot = _linear_setup(quickstart, 40)
    sigma = torch.linspace(1.4, 1.0, model.n_steps + 1, dtype=torch.float64)
    sampled = welfare(model, sigma, phi, phidot, brownian.W).mean().detach()
    moments = linear_moments(model, *gains, model.dt)
    exact = expected_welfare(model, sigma, moments).detach()
    assert abs(float(sampled - exact)) < 1e-10 * abs(float(exact))
    # and the same holdings: the moments' mean is the paths' mean
    assert float((phi.mean(0) - model.phibar - moments.mean).abs().max()) < 1e-10


def test_exact_market_equals_the_regression_on_moment_matched_paths(quickstart):
    model, gains, brownian, phi, _ = _linear_setup(quickstart, 40)
    sigma_paths, s0_paths = solve_volatility(model, phi, brownian.W, brownian.dW)
    moments = linear_moments(model, *gains, model.dt)
    mean, slopes = return_slopes(model, moments)
    sigma = volatility_pass(model, slopes)
    assert float((sigma - sigma_paths).abs().max()) < 1e-9
    assert abs(float(expected_s0(model, sigma, mean) - s0_paths)) < 1e-9


def test_the_streamed_identity_moments_are_the_slopes_of_the_full_moments(quickstart):
    """The check's lean forward roll gives what return_slopes reads off the (K+1) x N x K moments."""
    model, gains, _, _, _ = _linear_setup(quickstart, 40)
    mean, slopes = return_slopes(model, linear_moments(model, *gains, model.dt))
    lean_mean, lean_slopes = identity_moments(model, *gains, model.dt)
    assert lean_slopes.shape == slopes.shape == (model.n_steps, model.n_steps + 1)
    assert float(slopes.abs().max()) > 1e-2  # a feedback far from zero: the comparison is not of zeros
    assert float((lean_mean - mean).abs().max()) < 1e-12 * float(mean.abs().max())
    assert float((lean_slopes - slopes).abs().max()) < 1e-12 * float(slopes.abs().max())


def test_raw_paths_differ_from_the_expectation_where_matched_ones_do_not(quickstart):
    """The check above is not vacuous: on unmatched paths the sample mean misses the expectation."""
    model, gains, _, _, _ = _linear_setup(quickstart, 40)
    raw = BrownianSource(3, model.n_steps, model.dt, model.device, torch.float64).draw(80)
    phi, phidot = roll_holdings(model, raw.W, feedback_rates(*gains))
    sigma = torch.ones(model.n_steps + 1, dtype=torch.float64)
    exact = expected_welfare(model, sigma, linear_moments(model, *gains, model.dt))
    assert abs(float(welfare(model, sigma, phi, phidot, raw.W).mean() - exact)) > 1e-6 * abs(float(exact))
