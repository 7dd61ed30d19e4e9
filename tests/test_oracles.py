"""Oracles against each other and against the reference numbers of model.md section 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.oracles import FrictionlessOracle, RiccatiOracle, TwoAgentTanhOracle, oracle_for
from marketeq.solvers.losses import agent_utilities, clearing_error, terminal_error

E1_SIGMA = [1.24543, 1.24415, 1.24138, 1.23608, 1.22674, 1.21136, 1.18762, 1.15361, 1.10897, 1.05605, 1.0]


def implied_s0(model, paths):
    moves = paths.mu[:, :-1] * model.dt + paths.sigma[:, :-1] * paths.dW
    return model.terminal_price(paths.W[:, -1]) - moves.sum(1)


def test_e1_reference_numbers(e1_model):
    oracle = RiccatiOracle(e1_model)
    assert e1_model.gbar == pytest.approx(0.139126, abs=1e-6)
    np.testing.assert_allclose(oracle.sigma_curve(np.linspace(0, 0.2, 11)), E1_SIGMA, atol=1e-5)
    assert oracle.s0 == pytest.approx(0.361156, abs=1e-6)
    assert e1_model.frictionless_s0 == pytest.approx(0.372175, abs=1e-6)
    paths = oracle.paths(brownian_test_set(0, 20000, 100, e1_model.dt))
    assert float(paths.mu[:, 0].mean()) == pytest.approx(0.215800, abs=1e-6)
    assert float(implied_s0(e1_model, paths).mean()) == pytest.approx(0.3611, abs=1e-4)
    total = agent_utilities(e1_model, paths.mu, paths.sigma, paths.phi, paths.phidot, paths.W).sum(-1)
    stderr = float(total.std() / np.sqrt(total.shape[0]))
    assert abs(float(total.mean()) - (-42.23)) < 3 * stderr
    assert float(clearing_error(paths.phidot).mean()) < 1e-20  # the last agent takes the other side


def test_discretisation_floor_shrinks_with_steps(e1):
    spreads, terminals = [], []
    for steps in (100, 1000):
        model = MarketModel.from_scenario(e1.replace(**{"market.steps": steps}))
        paths = RiccatiOracle(model).paths(brownian_test_set(1, 2000, steps, model.dt))
        spreads.append(float(implied_s0(model, paths).std()))
        terminals.append(float(terminal_error(model, paths.S, paths.W).mean()))
    assert spreads[0] == pytest.approx(1.34e-3, rel=0.1)
    assert terminals[0] == pytest.approx(1.8e-6, rel=0.15)
    assert spreads[1] < spreads[0] / 5 and terminals[1] < terminals[0] / 50


def test_sigma_ends_at_alpha_and_exceeds_it_before(e1_model):
    sigma = RiccatiOracle(e1_model).sigma_curve(np.linspace(0, 0.2, 51))
    assert sigma[-1] == pytest.approx(e1_model.alpha, abs=1e-12)
    assert np.all(np.diff(sigma) < 0) and np.all(sigma[:-1] > e1_model.alpha)


def test_agent_order_does_not_matter(e1):
    shuffled = e1.replace(agents=[a.model_dump(by_alias=True) for a in reversed(e1.agents)])
    a, b = (MarketModel.from_scenario(s) for s in (e1, shuffled))
    brownian = brownian_test_set(3, 200, 100, a.dt)
    pa, pb = RiccatiOracle(a).paths(brownian), RiccatiOracle(b).paths(brownian)
    torch.testing.assert_close(pa.phidot, pb.phidot.flip(-1), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(pa.mu, pb.mu, rtol=1e-10, atol=1e-12)


def test_equal_gammas_reduce_to_tanh(quickstart):
    scenario = quickstart.replace(agents=[{"gamma": 1.7, "xi": 3.0}, {"gamma": 1.7, "xi": -3.0}])
    model = MarketModel.from_scenario(scenario)
    brownian = brownian_test_set(0, 300, model.n_steps, model.dt)
    riccati, tanh = RiccatiOracle(model).paths(brownian), TwoAgentTanhOracle(model).paths(brownian)
    torch.testing.assert_close(riccati.phidot, tanh.phidot, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(riccati.sigma, tanh.sigma, rtol=1e-12, atol=1e-12)


def test_two_agent_tanh_return_matches_identity(quickstart):
    """With sigma = alpha the tanh return is the return identity along its own holdings."""
    scenario = quickstart.replace(agents=[{"gamma": 1.0, "xi": 3.0}, {"gamma": 2.0, "xi": -3.0}])
    model = MarketModel.from_scenario(scenario)
    paths = TwoAgentTanhOracle(model).paths(brownian_test_set(0, 100, model.n_steps, model.dt))
    torch.testing.assert_close(paths.mu, model.return_identity(paths.sigma, paths.phi, paths.W))


def test_small_cost_tends_to_frictionless(quickstart):
    brownian = None
    errors = []
    for lam in (1e-3, 1e-5):
        scenario = quickstart.replace(**{"frictions.lambda": lam, "market.steps": 400})
        model = MarketModel.from_scenario(scenario)
        brownian = brownian or brownian_test_set(0, 200, model.n_steps, model.dt)
        riccati = RiccatiOracle(model).paths(brownian)
        free = FrictionlessOracle(model).paths(brownian)
        errors.append((float((riccati.sigma - free.sigma).abs().max()),
                       float((riccati.mu[:, 0] - free.mu[:, 0]).abs().max()),
                       float((riccati.phi - free.phi).abs().mean())))
    assert errors[1][0] < errors[0][0] / 5 and errors[1][0] < 0.01
    assert errors[1][1] < 0.01 and errors[1][2] < errors[0][2]


def test_frictionless_closed_form(quickstart):
    model = MarketModel.from_scenario(quickstart.replace(**{"frictions.lambda": 0.0}))
    oracle = oracle_for(model)
    assert isinstance(oracle, FrictionlessOracle)
    paths = oracle.paths(brownian_test_set(0, 100, model.n_steps, model.dt))
    torch.testing.assert_close(paths.S[:, -1], model.terminal_price(paths.W[:, -1]))
    torch.testing.assert_close(paths.phi.sum(-1), torch.full_like(paths.W, model.supply))
    expected = (model.beta - model.gbar * model.alpha**2 * model.supply) * model.horizon
    assert oracle.s0 == pytest.approx(expected)


def test_no_oracle_for_power_costs(quickstart):
    assert oracle_for(MarketModel.from_scenario(quickstart.replace(**{"frictions.q": 1.5}))) is None



def test_per_agent_costs(quickstart):
    """Agents with their own lambda: clearing, sigma_T = alpha, and a price consistent path by path (the
    implied S_0 spread shrinks with dt only if sigma is the price's true dW loading, which rests on the
    agents' optimality conditions), the weighted return identity, and the common-cost case recovered."""
    scenario = quickstart.replace(**{"agents[0].lambda": 0.05, "agents[2].lambda": 0.002})
    spreads = []
    for steps in (100, 1000):
        model = MarketModel.from_scenario(scenario.replace(**{"market.steps": steps}))
        oracle = oracle_for(model)
        assert isinstance(oracle, RiccatiOracle)
        paths = oracle.paths(brownian_test_set(0, 2000, steps, model.dt))
        assert float(clearing_error(paths.phidot).mean()) < 1e-20
        implied = implied_s0(model, paths)
        spreads.append(float(implied.std()))
        assert float(implied.mean()) == pytest.approx(oracle.s0, abs=3 * spreads[-1] / np.sqrt(2000) + 1e-3)
    assert spreads[1] < spreads[0] / 5
    assert oracle.sigma_curve(np.array([model.horizon]))[0] == pytest.approx(model.alpha, abs=1e-12)
    w = model.identity_weights
    torch.testing.assert_close(w, torch.tensor([1 / 0.05, 1 / 0.01, 1 / 0.002], dtype=torch.float64) / 620.0)
    same = scenario.replace(**{"agents[0].lambda": 0.01, "agents[2].lambda": 0.01})
    common = MarketModel.from_scenario(same)
    assert RiccatiOracle(common).s0 == pytest.approx(RiccatiOracle(MarketModel.from_scenario(quickstart)).s0,
                                                     abs=1e-12)
    assert abs(oracle.s0 - RiccatiOracle(common).s0) > 1e-4  # the costs matter
