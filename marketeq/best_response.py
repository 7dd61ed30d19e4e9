"""The best responses of the equilibrium gap: one price-taking deviation per agent against a recorded market.

The correction to the recorded rate is batched over agents (each agent has its own parameters); the
recorded market is a set of stored paths on which any such policy is rolled out step by step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from marketeq.model.economics import agent_utilities
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, paths_to_torch
from marketeq.solvers.networks import Scales

KNOTS = 8  # knots of the piecewise-linear time dependence of the feedback gains
AGENT_AXIS = {"coef": 1}  # the agent axis of each parameter (0 when not listed)


class BestResponse(nn.Module):
    """One best-response correction per agent, evaluated for all agents at once (agent axis batched).

    ``correction[b, n] = G(t_k)[n] . f[b, n] + c(t_k)[n] + h_n(f[b, n])``: gains piecewise linear in time
    (``KNOTS`` equally spaced knots: smooth, so few parameters to overfit the training paths) and, when
    ``hidden > 0``, per-agent tanh networks ``h_n`` for nonlinear best responses. Gains and the networks' last
    layer start at zero. The recorded features are known for the whole path in advance, so their share is
    computed for all steps at once; only the agent's own deviation ``e`` needs the step-by-step roll-out.
    """

    def __init__(self, n_agents: int, n_static: int, n_steps: int, hidden: int, generator: torch.Generator,
                 dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        knots = torch.linspace(0.0, 1.0, max(2, min(KNOTS, n_steps)), dtype=torch.float64)
        grid = torch.linspace(0.0, 1.0, n_steps + 1, dtype=torch.float64)[:-1]
        hats = (1.0 - (grid[:, None] - knots[None, :]).abs() / float(knots[1] - knots[0])).clamp_min(0.0)
        self.register_buffer("hats", hats.to(**kw))  # (K, J)
        self.coef = nn.Parameter(torch.zeros(len(knots), n_agents, n_static + 2, **kw))  # static, e, offset
        self.hidden = hidden
        if hidden > 0:
            def uniform(*shape: int, fan_in: int) -> nn.Parameter:
                draw = torch.rand(*shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0
                return nn.Parameter((draw / math.sqrt(fan_in)).to(**kw))

            self.w1 = uniform(n_agents, n_static + 1, hidden, fan_in=n_static + 1)
            self.b1 = uniform(n_agents, hidden, fan_in=n_static + 1)
            self.w2 = uniform(n_agents, hidden, hidden, fan_in=hidden)
            self.b2 = uniform(n_agents, hidden, fan_in=hidden)
            self.w3 = nn.Parameter(torch.zeros(n_agents, hidden, **kw))

    @torch.no_grad()
    def take(self, other: BestResponse, agents: Tensor) -> None:
        """Copy ``other``'s parameters of the agents where ``agents`` (N,) is True; keep the others."""
        for (name, mine), theirs in zip(self.named_parameters(), other.parameters(), strict=True):
            axis = AGENT_AXIS.get(name, 0)
            mask = agents.view([-1 if i == axis else 1 for i in range(mine.dim())])
            mine.copy_(torch.where(mask, theirs, mine))

    def precompute(self, static: Tensor) -> list[tuple[Tensor, Tensor, Tensor | None]]:
        """static (B, K+1, N, F) -> per step k < K: linear part (B, N), gain on e (N,) and first-layer input
        (B, N, H). Unbound into per-step tensors so that backward does not refill whole-path zeros."""
        static = static[:, :-1]
        gains = torch.einsum("kj,jnf->knf", self.hats, self.coef)
        linear = (static * gains[..., :-2]).sum(-1) + gains[..., -1]
        steps = list(zip(linear.unbind(1), gains[..., -2].unbind(0), strict=True))
        if self.hidden == 0:
            return [(lin, g, None) for lin, g in steps]
        first = torch.einsum("bknf,nfh->bknh", static, self.w1[:, :-1]) + self.b1
        return [(lin, g, h) for (lin, g), h in zip(steps, first.unbind(1), strict=True)]

    def forward(self, pre: tuple[Tensor, Tensor, Tensor | None], e: Tensor) -> Tensor:
        """Correction (B, N) at one step (``precompute``'s entry) for own deviations e (B, N), scaled."""
        linear, gain_e, first = pre
        out = linear + gain_e * e
        if first is None:
            return out
        h = torch.tanh(first + e.unsqueeze(-1) * self.w1[:, -1])
        h = torch.tanh(torch.einsum("bnh,nhj->bnj", h, self.w2) + self.b2)
        return out + (h * self.w3).sum(-1)


class RecordedMarket:
    """The recorded market on a set of paths (float64 tensors) and the best response's roll-out on it."""

    def __init__(self, model: MarketModel, paths: Paths, scales: Scales) -> None:
        self.p = paths_to_torch(paths, model.device)
        self.model, self.scales = model, scales

    @property
    def n_paths(self) -> int:
        return int(self.p.W.shape[0])

    def features(self, index: Tensor | slice) -> Tensor:
        """(B, K+1, N, F) recorded inputs in natural units: t, W, mu, sigma, D (all agents), own rate."""
        m, p, s = self.model, self.p, self.scales
        W, mu, sigma, phi, rate = p.W[index], p.mu[index], p.sigma[index], p.phi[index], p.phidot[index]
        B, K1, N = phi.shape
        shared = torch.cat([
            (m.times / m.horizon).expand(B, K1).unsqueeze(-1),
            (W / s.w).unsqueeze(-1),
            (mu.unsqueeze(-1) - m.frictionless_mu) / s.mu,
            sigma.unsqueeze(-1) / m.alpha - 1.0,
            (phi - m.phibar) / s.deviation,
        ], dim=-1)
        return torch.cat([shared.unsqueeze(2).expand(B, K1, N, shared.shape[-1]),
                          (rate / s.rate).unsqueeze(-1)], dim=-1)

    def n_features(self) -> int:
        return self.model.n_agents + 5

    def rollout(self, policy: BestResponse, index: Tensor | slice) -> tuple[Tensor, Tensor]:
        """Holdings and rates (B, K+1, N) of every agent's best response on the selected paths."""
        m, s = self.model, self.scales
        recorded = self.p.phidot[index]
        pre = policy.precompute(self.features(index))
        e = torch.zeros_like(recorded[:, 0])  # each agent's holding minus its recorded holding
        rates, deviations = [], []
        for k in range(m.n_steps):
            correction = policy(pre[k], e / s.deviation) * s.rate
            rates.append(recorded[:, k] + correction)
            deviations.append(e)
            e = e + correction * m.dt
        deviations.append(e)
        rates.append(recorded[:, -1])
        return self.p.phi[index] + torch.stack(deviations, 1), torch.stack(rates, 1)

    def utilities(self, phi: Tensor, phidot: Tensor, index: Tensor | slice) -> Tensor:
        """(B, N) J_n of holdings ``phi`` against the recorded market on the selected paths."""
        p = self.p
        return agent_utilities(self.model, p.mu[index], p.sigma[index], phi, phidot, p.W[index])
