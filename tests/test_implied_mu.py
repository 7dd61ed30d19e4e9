"""The return implied by the link (solvers/implied.py): exact at the Riccati oracle, the identity if N = 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketeq.model.brownian import BrownianSource
from marketeq.model.costs import PowerCost
from marketeq.model.market import MarketModel
from marketeq.oracles import oracle_for
from marketeq.solvers.implied import clearing_shift, implied_mu, newton_corrected_mu
from marketeq.solvers.losses import StateProjection
from marketeq.solvers.networks import Scales


def _projection(model: MarketModel, phi: torch.Tensor, W: torch.Tensor) -> StateProjection:
    scales = Scales(model)
    return StateProjection(scales.state(phi - model.phibar, W), w_variance=model.dt / scales.w**2)


@pytest.mark.parametrize("q", [2.0, 1.5, 1.2])
def test_clearing_shift_clears_with_per_agent_costs(q):
    cost = PowerCost(torch.tensor([0.3, 0.05, 0.1], dtype=torch.float64), q)
    base = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    z = clearing_shift(base, cost)
    residual = cost.inverse_marginal(base + z.unsqueeze(-1)).sum(-1)
    scale = cost.inverse_marginal(base).abs().sum(-1)
    assert float((residual.abs() / scale).max()) < 1e-10


@pytest.mark.parametrize("scenario_name", ["quickstart", "e1"])
def test_implied_mu_is_the_riccati_return(request, scenario_name):
    """On the exact equilibrium's paths the back-substitution returns the equilibrium's mu, state by state."""
    model = MarketModel.from_scenario(request.getfixturevalue(scenario_name), "cpu", torch.float64)
    paths = oracle_for(model).paths(BrownianSource(1, model.n_steps, model.dt, model.device,
                                                   model.dtype).draw(1024))
    phi, W = torch.as_tensor(paths.phi), torch.as_tensor(paths.W)
    sigma, mu = torch.as_tensor(paths.sigma), torch.as_tensor(paths.mu)
    projection = _projection(model, phi, W)
    implied = implied_mu(model, sigma, phi, W, projection)
    assert float((implied - mu)[:, :-1].abs().max()) < 1e-8 * float(mu.abs().max())
    # Already a solution: the Newton correction leaves it where it is; a wrong sigma moves it.
    corrected = newton_corrected_mu(model, implied, sigma, phi, W, projection)
    assert float((corrected - implied).abs().max()) < 1e-9
    moved = newton_corrected_mu(model, implied, 1.05 * sigma, phi, W, projection)
    assert float((moved - implied).abs().max()) > 1e-3


def test_two_agents_any_q_give_the_quadratic_answer(quickstart):
    """For N = 2 with one cost scale, (G')^-1 odd makes clearing mean E y^1 = -E y^2 whatever q is."""
    agents = [{"gamma": 1.0, "xi": 3.0}, {"gamma": 2.0, "xi": -3.0}]
    scenario = quickstart.replace(**{"market.steps": 20}, agents=agents)
    torch.manual_seed(2)
    quadratic = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    power = MarketModel.from_scenario(scenario.replace(**{"frictions.q": 1.5}), "cpu", torch.float64)
    W = torch.randn(400, 21, dtype=torch.float64).cumsum(1) * quadratic.dt**0.5
    W[:, 0] = 0.0
    phi = quadratic.phibar + torch.randn(400, 21, 2, dtype=torch.float64).cumsum(1) * 0.05
    sigma = torch.linspace(1.2, 1.0, 21, dtype=torch.float64).expand(400, 21)
    projection = _projection(quadratic, phi, W)
    a = implied_mu(quadratic, sigma, phi, W, projection)
    b = implied_mu(power, sigma, phi, W, projection)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_exact_link_with_two_agents_matches_the_known_return(tiny):
    """N = 2, q = 3/2: the return identity is exact, so a run that solves the link for mu (learned) must land
    where the run given the identity (known) lands."""
    from marketeq import solve

    agents = [{"gamma": 1.0, "xi": 3.0}, {"gamma": 2.0, "xi": -3.0}]
    scenario = tiny.replace(**{"frictions.q": 1.5, "solver.rounds": 3}, agents=agents)
    learned = solve(scenario.replace(**{"solver.link_solve": "exact"}))
    known = solve(scenario.replace(**{"solver.mu_mode": "known"}))
    sigma_learned = np.asarray(learned.paths.sigma).mean(0)
    sigma_known = np.asarray(known.paths.sigma).mean(0)
    assert np.abs(sigma_learned - sigma_known).max() < 0.01 * sigma_known.max()
    mu0 = learned.metrics["mu0"][0], known.metrics["mu0"][0]
    assert abs(mu0[0] - mu0[1]) < 0.03 * abs(mu0[1])
    assert learned.metrics["terminal"][0] < 1e-3


def test_expectation_one_step_ahead_is_exact_for_the_features():
    """For values that are features of the next state, E_k needs no regression across the step: D_{k+1} is
    known at t_k and E_k[W_{k+1}^j] follows from the Gaussian step."""
    gen = torch.Generator().manual_seed(5)
    B, K, dt = 2000, 6, 0.1
    W = torch.cat([torch.zeros(B, 1), torch.randn(B, K, generator=gen) * dt**0.5], 1).cumsum(1).double()
    D = torch.randn(B, K + 1, 1, generator=gen).double().cumsum(1)
    projection = StateProjection(torch.cat([D, W.unsqueeze(-1)], -1), ridge=1e-12, w_variance=dt)
    for k in range(K - 1):
        values = torch.stack([W[:, k + 1] ** 3 - 2 * D[:, k + 1, 0] ** 2, W[:, k + 1] ** 2], -1)
        want = torch.stack([W[:, k] ** 3 + 3 * W[:, k] * dt - 2 * D[:, k + 1, 0] ** 2, W[:, k] ** 2 + dt], -1)
        torch.testing.assert_close(projection.later(k, values), want, rtol=1e-8, atol=1e-8)


def test_implied_mode_lands_near_the_riccati_oracle(tiny):
    """mu_mode = "implied" (no mu network): for q = 2 the solved link is the return identity, so a short run
    must reach the oracle about as closely as "known" does."""
    from marketeq import solve

    result = solve(tiny.replace(**{"solver.mu_mode": "implied", "solver.rounds": 3}))
    assert result.status == "completed"
    assert result.metrics["oracle/sigma_sup_rel_error"][0] < 0.05
    assert result.metrics["oracle/mu0_rel_error"][0] < 0.1
    assert not any(key.startswith("market/mu_fit") or key == "market/link" for key in result.history)
