"""The networks: sigma_T = alpha built in when pinned, a fresh market is the frictionless one, and the agents'
shared time profile starts neutral and scales every agent's rate alike."""

from __future__ import annotations

import pytest
import torch

from marketeq.solvers.networks import MarketNet, PolicyNet


@pytest.mark.parametrize("pin", [False, True])
def test_a_fresh_market_has_the_frictionless_volatility(e1_model, pin):
    market = MarketNet(e1_model, [8, 8], pin_sigma=pin).double()
    torch.testing.assert_close(market.sigma(e1_model.times), torch.full_like(e1_model.times, e1_model.alpha))


def test_a_pinned_sigma_ends_at_alpha_whatever_the_weights(e1_model):
    torch.manual_seed(3)
    free, pinned = (MarketNet(e1_model, [8, 8], pin_sigma=pin).double() for pin in (False, True))
    for net in (free, pinned):
        for p in net.log_sigma.parameters():
            torch.nn.init.normal_(p, std=0.5)
    pinned.load_state_dict(free.state_dict())
    times = e1_model.times
    s_free, s_pinned = free.sigma(times), pinned.sigma(times)
    assert s_pinned[-1].item() == pytest.approx(e1_model.alpha, abs=1e-14)
    assert abs(s_free[-1].item() - e1_model.alpha) > 1e-3  # the free network is not pinned by accident
    torch.testing.assert_close(s_pinned[0], s_free[0])  # the same weights mean the same sigma_0
    assert (s_pinned > 0).all()


def _policies(model):
    torch.manual_seed(5)
    free = PolicyNet(model, [8, 8], nonlinear=True).double()
    torch.manual_seed(5)
    shared = PolicyNet(model, [8, 8], nonlinear=True, time_profile=True).double()
    for net in (free, shared):  # a trained-looking network, not the zero start
        for p in net.net.parameters():
            torch.nn.init.normal_(p, std=0.3)
    shared.net.load_state_dict(free.net.state_dict())
    return free, shared


def _rates(policy, model, k, D, W):
    t = model.times[k]
    return policy(t, D, W, policy.grid_gains(model.times)[k])


def test_a_fresh_time_profile_leaves_the_rates_unchanged(e1_model):
    free, shared = _policies(e1_model)
    D, W = torch.randn(64, e1_model.n_agents, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    for k in (0, e1_model.n_steps // 2, e1_model.n_steps - 1):
        torch.testing.assert_close(_rates(shared, e1_model, k, D, W), _rates(free, e1_model, k, D, W))


def test_the_time_profile_scales_every_agent_alike(e1_model):
    free, shared = _policies(e1_model)
    for p in shared.profile.parameters():
        torch.nn.init.normal_(p, std=0.3)
    D, W = torch.randn(64, e1_model.n_agents, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    factors = []
    for k in (0, e1_model.n_steps // 2, e1_model.n_steps - 1):
        ratio = _rates(shared, e1_model, k, D, W) / _rates(free, e1_model, k, D, W)
        torch.testing.assert_close(ratio, torch.full_like(ratio, ratio[0, 0].item()))  # one factor per time
        factors.append(ratio[0, 0].item())
    assert max(factors) - min(factors) > 1e-3  # and it does depend on time
