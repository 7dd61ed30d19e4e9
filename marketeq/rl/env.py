"""``MarketEnv``: one agent trading in a solved market, a gymnasium environment (one episode = one path)."""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.results import RunResult
from marketeq.rl.markets import MarketError, SolvedMarket, as_market
from marketeq.rl.simulator import RATE_BOUND, PathSimulator, RewardFn
from marketeq.scenario import Scenario

MarketSource = SolvedMarket | RunResult | Scenario | str | os.PathLike[str] | None


def own_utility(model: MarketModel) -> RewardFn:
    """Reward of one agent: its utility flow times dt, so that an episode's rewards sum to its Euler J."""
    return lambda flow, rate: flow[:, 0] * model.dt


def agent_simulator(market: SolvedMarket, agent: int, *, market_state: bool = False, baseline: bool = False,
                    reward_scale: float = 1.0, rate_bound: float = RATE_BOUND) -> PathSimulator:
    """The simulator of agent ``agent`` (0-based) facing the equilibrium processes of ``market``."""
    n = market.model.n_agents
    if not isinstance(agent, int | np.integer) or not 0 <= agent < n:
        raise MarketError(f"agent = {agent!r}: must be an index in 0..{n - 1} ({market.scenario.name} has "
                          f"{n} agents)")
    return PathSimulator(market.model, [int(agent)], market.processes(int(agent), market_state),
                         own_utility(market.model), baseline=baseline, reward_scale=reward_scale,
                         rate_bound=rate_bound, n_state=market.state_size(market_state))


def box_spaces(sim: PathSimulator) -> tuple[spaces.Box, spaces.Box]:
    """(observation space, action space) of a simulator: float32, actions in [-1, 1]."""
    obs = spaces.Box(-np.inf, np.inf, shape=(sim.obs_dim,), dtype=np.float32)
    return obs, spaces.Box(-1.0, 1.0, shape=(sim.n_actions,), dtype=np.float32)


class MarketEnv(gym.Env):
    """One agent of a solved market (an oracle or a finished run) trades against its equilibrium processes.

    Observation: ``t/T``, the agent's deviation from its frictionless holding (natural units), ``W/sqrt(T)``
    and, with ``market_state``, the market's mu, sigma and all agents' equilibrium deviations. Action: the
    trading rate in units of ``rate_bound`` natural rate units ``|xi| sqrt(T)/alpha / T``, in [-1, 1].
    Reward: the utility flow times dt (times ``reward_scale``); with ``baseline`` the flow of holding the
    myopic position ``(mu - gamma sigma xi W)/(gamma sigma^2)`` for free is subtracted: it does not depend on
    the actions, so the optimal policy is unchanged, and what is left is a pure tracking cost.
    """

    metadata = {"render_modes": []}

    def __init__(self, market: MarketSource = None, agent: int = 0, *, market_state: bool = False,
                 baseline: bool = False, reward_scale: float = 1.0, rate_bound: float = RATE_BOUND) -> None:
        super().__init__()
        self.market = as_market(market)
        self.agent = agent
        self.sim = agent_simulator(self.market, agent, market_state=market_state, baseline=baseline,
                                   reward_scale=reward_scale, rate_bound=rate_bound)
        self.observation_space, self.action_space = box_spaces(self.sim)
        self._root_dt = math.sqrt(self.market.model.dt)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        dW = self.np_random.standard_normal((1, self.market.model.n_steps)) * self._root_dt
        obs = self.sim.start(Brownian.from_increments(torch.as_tensor(dW)))
        return obs[0].numpy().astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.sim.brownian is None:
            raise RuntimeError("call reset() before step()")
        act = torch.as_tensor(np.asarray(action, dtype=np.float64).reshape(1, -1))
        obs, reward, done = self.sim.step(act)
        return obs[0].numpy().astype(np.float32), float(reward[0]), done, False, {}
