"""The players' networks: the agents' policy (generator) and the market (discriminator).

Inputs and outputs are scaled by the scenario's natural units so that every network works with O(1)
numbers: time as t/T, holdings deviations in units of |xi_n| sqrt(T)/alpha, W in units of sqrt(T).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from marketeq.model.market import MarketModel


def mlp(n_in: int, hidden: list[int], n_out: int, zero_last: bool = True) -> nn.Sequential:
    """tanh MLP; a zero last layer makes a fresh network output 0 (the frictionless start)."""
    layers: list[nn.Module] = []
    width = n_in
    for size in hidden:
        layers += [nn.Linear(width, size), nn.Tanh()]
        width = size
    last = nn.Linear(width, n_out)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class FeedbackNet(nn.Module):
    """``out = A(t) x + b(t) + h(t, x)``: a time-dependent linear feedback plus a nonlinear correction.

    With quadratic costs the equilibrium rates and return are linear in the state ``x = (D, W)`` with
    time-varying coefficients, which the first term represents exactly; the MLP ``h`` carries the
    nonlinearity of power costs. ``time_features(t)`` may be computed once per grid and reused.
    """

    def __init__(self, n_state: int, n_out: int, hidden: list[int], nonlinear: bool = True) -> None:
        super().__init__()
        self.n_state, self.n_out = n_state, n_out
        self.gains = mlp(1, hidden, n_out * (n_state + 1))
        self.correction = mlp(n_state + 1, hidden, n_out) if nonlinear else None

    def time_features(self, t: Tensor) -> Tensor:
        """(M, n_out, n_state + 1) feedback matrix and offset at scaled times t (M,)."""
        return self.gains(t.unsqueeze(-1)).view(-1, self.n_out, self.n_state + 1)

    def forward(self, t: Tensor, x: Tensor, gains: Tensor) -> Tensor:
        """One time: t (B, 1), x (B, n_state), gains (n_out, n_state + 1); or a grid of M times:
        t (B, M, 1), x (B, M, n_state), gains (M, n_out, n_state + 1). Returns (..., n_out)."""
        if gains.dim() == 2:  # one matrix for the whole batch: a single addmm
            linear = torch.addmm(gains[:, -1], x, gains[:, :-1].T)
        else:
            linear = torch.einsum("bms,mos->bmo", x, gains[..., :-1]) + gains[..., -1]
        if self.correction is None:
            return linear
        return linear + self.correction(torch.cat([t, x], dim=-1))


class Scales:
    """Natural units of a market, used to normalise network inputs and outputs."""

    def __init__(self, model: MarketModel) -> None:
        root_t = math.sqrt(model.horizon)
        xi_scale = model.xi.abs().clamp_min(0.1 * float(model.xi.abs().max()) + 1e-12)
        self.horizon = model.horizon
        self.w = root_t
        self.deviation = xi_scale * root_t / model.alpha  # (N,)
        self.rate = self.deviation / model.horizon  # (N,)
        beta_w = float((model.gamma * model.xi).mean().abs()) * model.alpha * root_t
        self.mu = max(model.frictionless_mu, beta_w, 1e-6)

    def state(self, D: Tensor, W: Tensor) -> Tensor:
        return torch.cat([D / self.deviation, (W / self.w).unsqueeze(-1)], dim=-1)


class PolicyNet(nn.Module):
    """The agents: one network maps (t, D, W) to all N trading rates.

    With ``time_profile`` the rates are ``exp(PROFILE_GAIN * p(t))`` times the network's: one learned
    factor of time shared by every agent (1 when fresh). Scaling all rates together keeps them clearing, so
    the clearing penalty does not resist it; the network alone, whose moves of one agent's rates the penalty
    opposes, did not learn to slow trading before T (measured on E3: rates stayed at 95% of their peak to
    the last step, while each agent's best response tapered them to a fifth).
    """

    PROFILE_GAIN = 10.0  # the profile moves ten times faster than its parameters (Adam steps are in those)

    def __init__(self, model: MarketModel, hidden: list[int], nonlinear: bool = True,
                 time_profile: bool = False) -> None:
        super().__init__()
        self.scales = Scales(model)
        self.net = FeedbackNet(model.n_agents + 1, model.n_agents, hidden, nonlinear)
        self.profile = mlp(1, [32, 32], 1) if time_profile else None

    def grid_gains(self, times: Tensor) -> Tensor:
        return self.net.time_features(times / self.scales.horizon)

    def forward(self, t: Tensor, D: Tensor, W: Tensor, gains: Tensor) -> Tensor:
        """t (B, 1) or broadcastable, D (B, N), W (B,) -> rates (B, N)."""
        x = self.scales.state(D, W)
        rates = self.net(t.expand(*x.shape[:-1], 1) / self.scales.horizon, x, gains) * self.scales.rate
        if self.profile is None:
            return rates
        # on the times as given (one per step in a roll-out), not on a copy per path
        times = t.reshape(1, 1) if t.dim() == 0 else t
        return rates * torch.exp(self.PROFILE_GAIN * self.profile(times / self.scales.horizon))


class MarketNet(nn.Module):
    """The market: initial price S_0, volatility sigma(t) > 0 and expected return mu(t, D, W).

    A fresh market is the frictionless one (sigma = alpha, mu = gbar alpha^2 s, frictionless S_0).
    """

    def __init__(self, model: MarketModel, hidden: list[int], nonlinear: bool = True,
                 pin_sigma: bool = False) -> None:
        super().__init__()
        self.scales = Scales(model)
        self.alpha, self.mu_bar = model.alpha, model.frictionless_mu
        self.pin_sigma = pin_sigma
        self.s0 = nn.Parameter(torch.tensor(model.frictionless_s0))
        self.log_sigma = mlp(1, hidden, 1)
        self.mu_net = FeedbackNet(model.n_agents + 1, 1, hidden, nonlinear)

    def sigma(self, times: Tensor) -> Tensor:
        """(M,) volatility on times (M,); with ``pin_sigma``, equal to alpha at T by construction.

        ``sigma_T = alpha`` holds in every equilibrium (the price's dependence on future trading vanishes
        at maturity, model.md section 3), but the terminal condition hardly sees the last steps: on E3 a
        free network let sigma end at 0.98.
        """
        s = times / self.scales.horizon
        log_ratio = self.log_sigma(s.unsqueeze(-1)).squeeze(-1)
        return self.alpha * torch.exp((1 - s) * log_ratio if self.pin_sigma else log_ratio)

    def mu_gains(self, times: Tensor) -> Tensor:
        return self.mu_net.time_features(times / self.scales.horizon)

    def mu(self, t: Tensor, D: Tensor, W: Tensor, gains: Tensor) -> Tensor:
        """t broadcastable to (..., 1), D (..., N), W (...) -> (...) expected return."""
        x = self.scales.state(D, W)
        out = self.mu_net(t.expand(*x.shape[:-1], 1) / self.scales.horizon, x, gains).squeeze(-1)
        return self.mu_bar + self.scales.mu * out
