"""The g table of the leading-order approximation and the approximation against exact answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from marketeq import load_scenario
from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.oracles import (
    LeadingOrderOracle,
    RiccatiOracle,
    TwoAgentTanhOracle,
    oracle_names,
    reference_for,
    reference_name,
)
from marketeq.oracles.gfunction import TABLE, asymptote, fd_residual, g_curve, load_table, solve_g

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="module")
def table():
    return load_table()


@pytest.fixture(scope="module")
def e2():
    return load_scenario(SCENARIOS / "paper_e2_power_2_agents.toml")


def row(table, q):
    return int(np.flatnonzero(np.isclose(table["q"], q))[0])


def test_table_is_small_plain_and_covers_the_q_range(table):
    assert TABLE.stat().st_size < 1_000_000
    assert {1.25, 1.5, 1.75, 2.0} <= set(np.round(table["q"], 6))
    assert table["g"].shape == table["gp"].shape == (len(table["q"]), len(table["x"]))
    assert table["x"][0] == 0.0 and np.all(table["g"][:, 0] == 0.0)


@pytest.mark.parametrize("q", [1.25, 1.5, 1.75, 2.0])
def test_table_solves_the_ode_and_meets_the_asymptote(table, q):
    i = row(table, q)
    x, g, gp = table["x"], table["g"][i], table["gp"][i]
    # residual recomputed here from the stored arrays, with g'' by finite differences (dx^2 error ~1e-4)
    assert np.abs(fd_residual(x, g, gp, q)).max() < 5e-4
    assert table["max_residual"][i] < 1e-6  # from the collocation solution's own g''
    assert np.all(g[1:] < 0) and np.all(gp < 0)  # odd solution, negative for x > 0
    # the mismatch with -A x^a decays like x^-2: small at the end of the table, smaller than halfway
    end = g[-1] / asymptote(x[-1], q) - 1.0
    half = g[len(x) // 2] / asymptote(x[len(x) // 2], q) - 1.0
    assert abs(end) < 3e-3 and (q == 2.0 or abs(end) < abs(half) / 2)
    assert table["gp0"][i] == pytest.approx(table["gp0_shooting"][i], abs=1e-7)  # two independent methods


def test_g_prime_at_zero_for_three_halves(table):
    i = row(table, 1.5)
    assert table["gp0"][i] == pytest.approx(-1.7714, abs=5e-4)  # model.md: about -1.771 (-1.77113 here)
    x, g = table["x"], table["g"][i]
    # forward integration from the tabulated slope follows the table until the unstable mode takes over
    sol = solve_ivp(lambda s, y: [y[1], 2 * s + y[1] * np.abs(y[0] / 1.5) ** 2], (0, 3), [0, table["gp0"][i]],
                    method="Radau", rtol=1e-10, atol=1e-12, dense_output=True)
    inside = x <= 3
    assert np.abs(sol.sol(x[inside])[0] - g[inside]).max() < 1e-6


def test_q_two_is_the_straight_line(table):
    i = row(table, 2.0)
    np.testing.assert_allclose(table["g"][i], -2.0 * table["x"], atol=1e-8)


def test_the_script_output_is_current(table):
    fresh = solve_g(1.5)
    np.testing.assert_allclose(fresh.g, table["g"][row(table, 1.5)], atol=1e-9)


def test_curve_is_odd_and_continuous_past_the_table():
    curve = g_curve(1.5)
    x = np.array([0.3, 2.2, 15.999, 16.0, 16.001, 40.0])
    np.testing.assert_allclose(curve(-x), -curve(x))
    assert curve(np.array([16.0 - 1e-9]))[0] == pytest.approx(curve(np.array([16.0 + 1e-9]))[0], abs=1e-7)
    assert curve(np.array([40.0]))[0] == pytest.approx(asymptote(40.0, 1.5), rel=5e-4)


def test_e2_reference_numbers(e2):
    model = MarketModel.from_scenario(e2)
    oracle = LeadingOrderOracle(model)
    assert reference_name(e2) == "pde" and "leading-order" in oracle_names(e2)  # available beside the PDE
    assert not oracle.exact and "approximate" in oracle.name
    assert oracle.sigma == pytest.approx(1.072, abs=5e-4)
    assert oracle.mu0 == pytest.approx(0.766, abs=5e-4)
    s0 = (model.beta - model.gbar * model.supply * oracle.sigma**2) * model.horizon
    assert oracle.s0 == pytest.approx(s0) and oracle.s0 == pytest.approx(0.4935, abs=1e-4)
    paths = oracle.paths(brownian_test_set(0, 400, model.n_steps, model.dt))
    assert float(paths.mu[:, 0].mean()) == pytest.approx(oracle.mu0, rel=1e-12)
    assert torch.all(paths.phidot.sum(-1) == 0) and torch.all(paths.sigma == oracle.sigma)
    # the rate pulls agent 1 towards its frictionless holding: rate and distance have opposite signs
    distance = oracle.distance(paths.phi - model.phibar, paths.W)
    assert torch.all(paths.phidot[..., 0] * distance <= 0)


def test_reference_for_picks_exact_oracles_first(quickstart, e2):
    assert isinstance(reference_for(MarketModel.from_scenario(quickstart)), RiccatiOracle)
    three_power = quickstart.replace(**{"frictions.q": 1.5})
    assert reference_for(MarketModel.from_scenario(three_power)) is None


@pytest.fixture(scope="module")
def quadratic_pair(e2):
    """E2's agents with a quadratic cost and a small lambda: the regime the expansion describes."""
    return MarketModel.from_scenario(e2.replace(**{"frictions.q": 2.0, "frictions.lambda": 1e-3}))


def test_quadratic_limit_is_the_tanh_feedback_away_from_maturity(quadratic_pair):
    m = quadratic_pair
    lo, tanh = LeadingOrderOracle(m), TwoAgentTanhOracle(m)
    assert lo.kappa == pytest.approx(tanh.kappa)
    paths = tanh.paths(brownian_test_set(0, 200, m.n_steps, m.dt))
    rate = lo.rate(lo.distance(paths.phi - m.phibar, paths.W))
    far = (m.horizon - m.times) * tanh.kappa > 6  # tanh(kappa tau) = 1 to 1e-5
    exact = paths.phidot[:, far, 0]
    assert float((rate[:, far] - exact).abs().max() / exact.abs().max()) < 2e-5
    near = ~far
    near[-1] = False  # the tanh rate vanishes at T, the infinite-horizon one does not
    assert float((rate[:, near] - paths.phidot[:, near, 0]).abs().max()) > 0.01 * float(exact.abs().max())


def test_quadratic_limit_of_sigma_is_the_riccati_volatility(quadratic_pair):
    lo, riccati = LeadingOrderOracle(quadratic_pair), RiccatiOracle(quadratic_pair)
    excess = riccati.sigma_curve(np.array([0.0]))[0] - quadratic_pair.alpha
    assert lo.sigma - quadratic_pair.alpha == pytest.approx(excess, rel=1e-3)


def test_rates_are_continuous_as_q_tends_to_two(quadratic_pair):
    near_two = LeadingOrderOracle(MarketModel.from_scenario(
        load_scenario(SCENARIOS / "paper_e2_power_2_agents.toml").replace(
            **{"frictions.q": 1.99, "frictions.lambda": 1e-3})))  # not tabulated: solved on demand
    exact = LeadingOrderOracle(quadratic_pair)
    distance = torch.linspace(-0.3, 0.3, 61, dtype=torch.float64)
    a, b = near_two.rate(distance), exact.rate(distance)
    assert float((a - b).abs().max() / b.abs().max()) < 0.05
