"""Loss terms on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from marketeq.model.costs import PowerCost
from marketeq.model.market import MarketModel
from marketeq.solvers.losses import (
    agent_utilities,
    agents_loss,
    clearing_error,
    implied_clearing,
    link_loss,
    terminal_error,
)


@pytest.fixture
def model(quickstart):
    """Two steps of dt = 0.5, two agents with gamma = (1, 3), xi = (2, -2), lambda = 0.1."""
    scenario = quickstart.replace(**{"market.horizon": 1.0, "market.steps": 2, "frictions.lambda": 0.1},
                                  agents=[{"gamma": 1.0, "xi": 2.0}, {"gamma": 3.0, "xi": -2.0}])
    return MarketModel.from_scenario(scenario)


def test_power_cost_inverse_and_values():
    cost = PowerCost(0.2, 1.5)
    x = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)
    torch.testing.assert_close(cost.inverse_marginal(cost.marginal(x)), x)
    assert float(cost.cost(torch.tensor(4.0))) == pytest.approx(0.2 / 1.5 * 8.0)
    assert float(cost.marginal(torch.tensor(-4.0))) == pytest.approx(-0.2 * 2.0)
    assert float(PowerCost(0.2).cost(torch.tensor(3.0))) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        PowerCost(0.1, 2.5)


def test_utilities_by_hand(model):
    # one path: W = (0, 1, -1), phi^1 = (1, 2, 2), phi^2 = (0, -1, -1), rates (2, 0), (-2, 0)
    W = torch.tensor([[0.0, 1.0, -1.0]], dtype=torch.float64)
    phi = torch.tensor([[[1.0, 0.0], [2.0, -1.0], [2.0, -1.0]]], dtype=torch.float64)
    phidot = torch.tensor([[[2.0, -2.0], [0.0, 0.0], [5.0, 5.0]]], dtype=torch.float64)
    mu = torch.tensor([[0.5, 1.0, 9.0]], dtype=torch.float64)
    sigma = torch.tensor([[1.0, 2.0, 9.0]], dtype=torch.float64)
    J = agent_utilities(model, mu, sigma, phi, phidot, W)
    # agent 1: k=0: 0.5*1 - 0.5*(1*1 + 0)^2 - 0.05*4 = -0.2; k=1: 1*2 - 0.5*(4 + 2)^2 = -16
    # agent 2: k=0: 0 - 1.5*0 - 0.2 = -0.2;              k=1: -1 - 1.5*(-2 - 2)^2 = -25
    torch.testing.assert_close(J, torch.tensor([[-16.2 * 0.5, -25.2 * 0.5]], dtype=torch.float64))
    torch.testing.assert_close(clearing_error(phidot), torch.tensor([0.0], dtype=torch.float64))
    S = torch.tensor([[0.0, 0.0, 1.5]], dtype=torch.float64)  # target beta*T + alpha*W_T = 2 - 1 = 1
    torch.testing.assert_close(terminal_error(model, S, W), torch.tensor([0.25], dtype=torch.float64))


def test_clearing_ignores_the_last_grid_point():
    phidot = torch.tensor([[[1.0, 3.0], [-1.0, 0.0], [100.0, 100.0]]])
    torch.testing.assert_close(clearing_error(phidot), torch.tensor([(4.0 + 0.25) / 2]))


def test_agents_loss_weights_and_penalty(model):
    utilities = torch.tensor([[1.0, 3.0], [3.0, 5.0]])
    phidot = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]] * 2)
    loss, logs = agents_loss(model, utilities, phidot, torch.tensor([1.0, 2.0]), clearing_weight=10.0)
    # utility term (2*1 + 4*2) / (N*T) = 5; clearing = mean over k<K of mean-rate^2 = 0.5
    assert float(loss) == pytest.approx(-5.0 + 10.0 * 0.5)
    assert float(logs["agents/utility"]) == pytest.approx(6.0)


def test_link_is_zero_exactly_at_the_return_identity(model):
    torch.manual_seed(0)
    W = torch.randn(4, 3, dtype=torch.float64).cumsum(1)
    phi = torch.randn(4, 3, 2, dtype=torch.float64)
    sigma = torch.full((4, 3), 1.3, dtype=torch.float64)
    mu = model.return_identity(sigma, phi, W)
    assert float(link_loss(model, mu, sigma, phi, W, 1.0, "levels")) < 1e-28
    assert float(link_loss(model, mu, sigma, phi, W, 1.0, "increments")) < 1e-28
    shifted = mu.clone()
    shifted[:, 0] += 0.1  # a wrong mu_0 appears only in y_0: levels and increments agree here
    r0 = 0.1 * model.dt / model.cost.lam  # implied mean rate at k = 0 (the 1/N and the N agents cancel)
    assert float(implied_clearing(model, shifted, sigma, phi, W)[0, 0]) == pytest.approx(r0)
    assert float(link_loss(model, shifted, sigma, phi, W, 1.0, "levels")) == pytest.approx(r0**2 / 2)
    assert float(link_loss(model, shifted, sigma, phi, W, 1.0, "increments")) == pytest.approx(
        (r0 * model.n_steps) ** 2 / 2)


@pytest.mark.parametrize("q", [2.0, 1.5])
def test_weighted_identity_clears_with_per_agent_costs(quickstart, q):
    """With lambda_n per agent the return identity weights agent n by 1/lambda_n; for q = 2 (any N) or N = 2
    (any q) the implied optimal rates then clear exactly, and the unweighted mean would not."""
    agents = [{"gamma": 1.0, "xi": 2.0, "lambda": 0.3}, {"gamma": 3.0, "xi": -2.0, "lambda": 0.05}]
    scenario = quickstart.replace(**{"frictions.q": q}, agents=agents)
    model = MarketModel.from_scenario(scenario)
    torch.manual_seed(1)
    W = torch.randn(5, model.n_steps + 1, dtype=torch.float64).cumsum(1) * model.dt**0.5
    phi = torch.randn(5, model.n_steps + 1, 2, dtype=torch.float64)
    sigma = torch.full_like(W, 1.2)
    mu = model.return_identity(sigma, phi, W)
    assert float(implied_clearing(model, mu, sigma, phi, W).abs().max()) < 1e-9
    plain = sigma * (model.gamma * model.risk_term(sigma, phi, W)).mean(-1)
    assert float(implied_clearing(model, plain, sigma, phi, W).abs().max()) > 1e-3
