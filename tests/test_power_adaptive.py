"""The adaptive schedule's pieces for power costs: the marginal-benefit policy, the path-wise market
sensitivities and the agents' phase's stopping tolerance."""

from __future__ import annotations

import pytest
import torch

from marketeq.model.brownian import BrownianSource
from marketeq.model.market import MarketModel
from marketeq.model.rollout import roll_holdings
from marketeq.solvers.agents_stop import FORCING, agents_tolerance
from marketeq.solvers.benefits import BenefitToRate
from marketeq.solvers.fixed_point import RoundCheck
from marketeq.solvers.levels import Level
from marketeq.solvers.pathwise import mean_tangents


@pytest.fixture(scope="module")
def power_model(quickstart):
    """The quickstart market with q = 3/2 on 12 steps, three agents, float64."""
    scenario = quickstart.replace(**{"market.steps": 12, "frictions.q": 1.5, "run.dtype": "float64"})
    return MarketModel.from_scenario(scenario, "cpu", torch.float64)


def test_benefit_map_is_the_inverse_marginal_cost_away_from_zero_and_trainable_at_zero(power_model):
    m = power_model
    scale = torch.ones(m.n_agents, dtype=torch.float64)
    h = BenefitToRate(m, scale)
    y_big = 1e4 * h.c * torch.tensor([[1.0, -2.0, 3.0]])[:, : m.n_agents]
    out = y_big / h.benefit_scale  # the network's output whose benefit is y_big
    exact = m.cost.inverse_marginal(y_big)
    assert torch.allclose(h(out), exact, rtol=5e-2)  # within 2 p c/|y| of (G')^-1 far from 0
    grid = torch.linspace(-3, 3, 601, dtype=torch.float64).unsqueeze(-1).expand(-1, m.n_agents)
    assert bool((h(grid).diff(dim=0) > 0).all())  # increasing: a bijection onto the rates
    zero = torch.zeros(1, m.n_agents, dtype=torch.float64, requires_grad=True)
    h(zero).sum().backward()
    assert bool(torch.isfinite(zero.grad).all()) and float(zero.grad.min()) > 0  # a fresh network trains


def test_pathwise_sensitivities_match_finite_differences_of_the_roll_out(power_model):
    m = power_model
    torch.manual_seed(0)
    level = Level(m, None, None, [8])  # type: ignore[arg-type]
    with torch.no_grad():
        for p in level.policy.parameters():
            p.add_(0.3 * torch.randn_like(p))  # a non-linear policy, not the fresh zero one
    brownian = BrownianSource(1, m.n_steps, m.dt, m.device, torch.float64).draw(64)
    rates = level.rates()
    weights = m.identity_weights * m.gamma
    with torch.no_grad():
        phi, _ = roll_holdings(m, brownian.W, rates)
    slopes = mean_tangents(m, rates, phi, brownian.W, weights)
    eps = 1e-6
    for k in (0, 4, 9):
        moved = []
        for sign in (1.0, -1.0):
            dW = brownian.dW.clone()
            dW[:, k] += sign * eps
            W = torch.cat([torch.zeros_like(dW[:, :1]), dW.cumsum(1)], dim=1)
            with torch.no_grad():
                moved.append(roll_holdings(m, W, rates)[0] @ weights)
        fd = ((moved[0] - moved[1]) / (2 * eps)).mean(0)  # (K+1,) E dA_j / d dW_k
        assert torch.allclose(slopes[k], fd, atol=1e-6 * float(fd.abs().max()) + 1e-9)
        assert float(fd[: k + 2].abs().max()) == 0.0  # phi_j is fixed before dW_k moves it


def test_agents_phase_tolerance_tightens_with_the_outer_residual():
    def check(sigma_change: float) -> RoundCheck:
        return RoundCheck(sigma_change, 0.0, 0.0, 0.0, 0.0, 0.0)

    assert agents_tolerance([], 1e-8) > agents_tolerance([check(1e-2)], 1e-8) > agents_tolerance(
        [check(1e-3)], 1e-8)
    assert agents_tolerance([check(1e-3)], 1e-8) == pytest.approx(FORCING * 1e-6)
    assert agents_tolerance([check(1e-6)], 1e-8) == 1e-8  # never below the schedule's floor


def test_link_market_sensitivities_match_autograd_and_the_fit_they_replace(power_model):
    """The link's return and its state gradients against autograd through one Newton step of the clearing
    equation (exact at its root), and the volatility against the least-squares fit of the same returns."""
    from marketeq.model.brownian import moment_matched
    from marketeq.solvers.fixed_point import fit_volatility
    from marketeq.solvers.implied import _float64_cost, clearing_shift, implied_mu
    from marketeq.solvers.losses import StateProjection, _features
    from marketeq.solvers.pathwise_link import _link_return, link_volatility, policy_jacobians

    m = power_model
    torch.manual_seed(0)
    level = Level(m, None, None, [16])  # type: ignore[arg-type]
    with torch.no_grad():
        for p in level.policy.parameters():
            p.add_(0.2 * torch.randn_like(p))
    b = moment_matched(BrownianSource(3, m.n_steps, m.dt, m.device, torch.float64).draw(4000), m.dt)
    rates, scales = level.rates(), level.policy.scales
    with torch.no_grad():
        phi, _ = roll_holdings(m, b.W, rates)
    projection = StateProjection.along(m, scales, phi, b.W)
    sigma = torch.linspace(1.1, 1.0, m.n_steps + 1, dtype=torch.float64)
    jacobians = policy_jacobians(m, rates, phi, b.W)
    mu, grad_D, grad_W = _link_return(m, sigma, phi, b.W, projection, scales, jacobians)
    assert torch.allclose(mu, implied_mu(m, sigma.expand(b.W.shape), phi, b.W, projection), atol=1e-10)
    cost, dt, k = _float64_cost(m.cost), m.dt, 6
    y_next = torch.zeros_like(phi[:, 0])  # the continuation's coefficients at k+1, by back-substitution
    for j in range(m.n_steps - 1, k, -1):
        later = projection.later(j, y_next) if j + 1 < m.n_steps else torch.zeros_like(y_next)
        base = -m.gamma * sigma[j] * (sigma[j] * phi[:, j] + m.xi * b.W[:, j, None]) * dt + later
        y_next = base + clearing_shift(base, cost).unsqueeze(-1)
    coef = projection.operator[k + 1] @ y_next / y_next.shape[0]
    D = (phi[:, k] - m.phibar).clone().requires_grad_(True)
    W = b.W[:, k].clone().requires_grad_(True)
    u = torch.cat([(D + rates(k, D, W) * dt) / scales.deviation, (W / scales.w).unsqueeze(-1)], -1)
    features, n_coords, w_var = _features(u).clone(), u.shape[-1], dt / scales.w**2
    features[:, 2 * n_coords] = features[:, 2 * n_coords] + w_var
    features[:, 3 * n_coords] = features[:, 3 * n_coords] + 3 * u[:, -1] * w_var
    base = -m.gamma * sigma[k] * (sigma[k] * (D + m.phibar) + m.xi * W.unsqueeze(-1)) * dt + features @ coef
    z = clearing_shift(base.detach(), cost).unsqueeze(-1)
    newton = z - cost.inverse_marginal(base + z).sum(-1, keepdim=True) / cost.inverse_marginal_slope(
        base + z).sum(-1, keepdim=True)
    assert torch.allclose(newton.squeeze(-1).detach() / dt, mu[:, k], atol=1e-10)
    auto_D, auto_W = torch.autograd.grad(newton.sum(), (D, W))
    assert torch.allclose(grad_D[:, k], auto_D / dt, atol=1e-9 * float(auto_D.abs().max() / dt))
    assert torch.allclose(grad_W[:, k], auto_W / dt, atol=1e-9 * float(auto_W.abs().max() / dt))
    pathwise, _ = link_volatility(m, sigma, phi, b.W, b.dW, projection, scales, jacobians)
    fitted, _ = fit_volatility(m, mu, b.W, b.dW)
    assert float(((pathwise - fitted).abs() / fitted)[1:].max()) < 0.02  # the fit's sampling error
