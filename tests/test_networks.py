"""The market network: sigma_T = alpha built in when pinned, and a fresh market is the frictionless one."""

from __future__ import annotations

import pytest
import torch

from marketeq.solvers.networks import MarketNet


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
