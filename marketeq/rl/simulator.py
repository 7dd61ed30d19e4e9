"""Many paths of one market stepped together: the engine under the gymnasium and stable-baselines3 envs.

An episode is one path on the scenario's grid. At the start of a batch of episodes the market's processes
(mu, sigma and an optional market state) are computed along freshly drawn increments, once for the whole
grid; each step then moves the controlled agents' holdings by their trading rates and pays the utility flow
``(mu phi - gamma/2 (sigma phi + xi W)^2 - G(phidot)) dt`` of :meth:`MarketModel.utility_flow`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.solvers.networks import Scales

RATE_BOUND = 4.0  # actions in [-1, 1] map to +-4 natural rate units: above the largest optimal rates seen


@dataclass(frozen=True)
class Processes:
    """The market along B paths, as the controlled agents face it: ``mu``, ``sigma`` (B, K+1) and an
    optional scaled market state (B, K+1, M) shown in the observation."""

    mu: Tensor
    sigma: Tensor
    state: Tensor | None = None


ProcessesFn = Callable[[Brownian], Processes]
# reward(flow (B, A) utility flow per unit of time, rates (B, A)) -> (B,) reward of one step
RewardFn = Callable[[Tensor, Tensor], Tensor]
# policy(observations (B, obs_dim)) -> actions (B, A) in [-1, 1]
PolicyFn = Callable[[Tensor], Tensor]


class PathSimulator:
    """B paths of a market in which the agents ``agents`` trade; every other agent is part of the market.

    Observation, per path: ``t/T``, the controlled agents' deviations from their frictionless holdings
    ``phi - (gbar s/gamma - xi W/alpha)`` in units of ``|xi| sqrt(T)/alpha``, ``W/sqrt(T)``, then the market
    state if any. Action: rates in units of ``rate_bound``, clipped to [-1, 1].
    """

    def __init__(self, model: MarketModel, agents: Sequence[int], processes: ProcessesFn, reward: RewardFn,
                 *, baseline: bool = False, reward_scale: float = 1.0, rate_bound: float = RATE_BOUND,
                 n_state: int = 0, net_share: float | None = None) -> None:
        self.model, self.agents = model, list(agents)
        index = torch.as_tensor(self.agents, device=model.device)
        # The controlled agents' own parameters: utility_flow broadcasts gamma and xi over the agent axis.
        self.agent_model = dataclasses.replace(model, gamma=model.gamma[index], xi=model.xi[index])
        self.phibar = model.phibar[index]
        scales = Scales(model)
        self.deviation_unit = scales.deviation[index]
        self.rate_bound = rate_bound * scales.rate[index]  # (A,)
        self.processes_fn, self.reward_fn = processes, reward
        self.baseline, self.reward_scale = baseline, reward_scale
        self.n_state, self.net_share = n_state, net_share
        self.obs_dim = 2 + len(self.agents) + n_state
        self.k = 0
        self.brownian: Brownian | None = None
        self.market: Processes | None = None
        self.phi = self.phibar.expand(1, -1)
        self.objective = torch.zeros(1, dtype=model.dtype, device=model.device)

    @property
    def n_actions(self) -> int:
        return len(self.agents)

    @property
    def n_paths(self) -> int:
        return 0 if self.brownian is None else self.brownian.n_paths

    def frictionless(self, W: Tensor) -> Tensor:
        """(..., A) frictionless holdings gbar s/gamma - xi W/alpha of the controlled agents at W (...)."""
        return self.phibar - self.agent_model.xi * W.unsqueeze(-1) / self.model.alpha

    def myopic(self, mu: Tensor, sigma: Tensor, W: Tensor) -> Tensor:
        """(B, A) holdings maximising the utility flow at mu, sigma, W (B,): (mu - gamma sigma xi W) /
        (gamma sigma^2). The flow is a concave quadratic in phi, flow(phi) - flow(myopic) =
        -gamma sigma^2/2 (phi - myopic)^2, so as a baseline it leaves a pure tracking cost.
        """
        g, xi = self.agent_model.gamma, self.agent_model.xi
        s = sigma.unsqueeze(-1)
        return (mu.unsqueeze(-1) - g * s * xi * W.unsqueeze(-1)) / (g * s * s)

    def observe(self, k: int, phi: Tensor, W: Tensor, state: Tensor | None = None) -> Tensor:
        """(B, obs_dim) observation at step k of holdings phi (B, A), W (B,) and a market state (B, M)."""
        t = torch.full_like(W, k / self.model.n_steps).unsqueeze(-1)
        gap = (phi - self.frictionless(W)) / self.deviation_unit
        parts = [t, gap, (W / self.model.horizon**0.5).unsqueeze(-1)]
        if self.n_state:
            parts.append(state)
        return torch.cat(parts, dim=-1)

    def rates(self, action: Tensor) -> Tensor:
        """(B, A) trading rates of actions in [-1, 1] (clipped).

        With ``net_share`` the agents' mean rate (the clearing residual) is scaled by it, an invertible
        change of coordinates that keeps exploration noise mostly along rates that clear.
        """
        rates = action.clamp(-1.0, 1.0) * self.rate_bound
        if self.net_share is None:
            return rates
        return rates - (1.0 - self.net_share) * rates.mean(-1, keepdim=True)

    # --- episodes ------------------------------------------------------------------------------------
    def start(self, brownian: Brownian) -> Tensor:
        """Begin a batch of episodes along ``brownian`` (B paths); returns the first observations."""
        self.brownian = brownian.to(self.model.device, self.model.dtype)
        with torch.no_grad():
            self.market = self.processes_fn(self.brownian)
        self.k = 0
        self.phi = self.phibar.expand(self.brownian.n_paths, -1).clone()
        self.objective = torch.zeros_like(self.brownian.W[:, 0])
        return self._observation()

    def _observation(self) -> Tensor:
        state = None if self.market.state is None else self.market.state[:, self.k]
        return self.observe(self.k, self.phi, self.brownian.W[:, self.k], state)

    @torch.no_grad()
    def step(self, action: Tensor) -> tuple[Tensor, Tensor, bool]:
        """Trade at ``action`` (B, A) for one step: (next observations, rewards (B,), episode over).

        ``objective`` (B,) accumulates the rewards before baseline and scaling: the episode's Euler sum.
        """
        k, W_k = self.k, self.brownian.W[:, self.k]
        mu, sigma = self.market.mu[:, k], self.market.sigma[:, k]
        rate = self.rates(action.to(self.model.dtype))
        flow = self.agent_model.utility_flow(mu, sigma, self.phi, rate, W_k)
        objective = self.reward_fn(flow, rate)
        self.objective = self.objective + objective
        reward = objective
        if self.baseline:  # holding the myopic position for free: independent of the actions
            still = torch.zeros_like(rate)
            best = self.agent_model.utility_flow(mu, sigma, self.myopic(mu, sigma, W_k), still, W_k)
            reward = reward - self.reward_fn(best, still)
        self.phi = self.phi + rate * self.model.dt
        self.k += 1
        return self._observation(), reward * self.reward_scale, self.k == self.model.n_steps

    @torch.no_grad()
    def rollout(self, policy: PolicyFn, brownian: Brownian) -> tuple[Tensor, Tensor, Tensor]:
        """Holdings (B, K+1, A), rates (B, K+1, A) and summed rewards (B,) of ``policy`` along ``brownian``.

        Rates at t_K are reported as zero (unused by Euler sums), as in the engine's roll-outs.
        """
        obs = self.start(brownian)
        phis, rates, total = [self.phi], [], 0.0
        done = False
        while not done:
            action = policy(obs)
            rates.append(self.rates(action.to(self.model.dtype)))
            obs, reward, done = self.step(action)
            phis.append(self.phi)
            total = total + reward
        rates.append(torch.zeros_like(rates[-1]))
        return torch.stack(phis, 1), torch.stack(rates, 1), total
