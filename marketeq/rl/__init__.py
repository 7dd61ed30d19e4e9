"""Reinforcement learning in marketeq's markets: gymnasium environments and stable-baselines3 learners.

``MarketEnv`` (registered as ``marketeq/Market-v0``) lets one agent trade in a solved market; the
vectorised :class:`MarketVecEnv` steps many paths at once for stable-baselines3; :mod:`marketeq.rl.learners`
trains the agents' phase of the reinforcement-link loop, or one agent in a finished run, with sb3.
"""

from gymnasium.envs.registration import register, registry

from marketeq.rl.env import MarketEnv, agent_simulator
from marketeq.rl.markets import MarketError, SolvedMarket, as_market, oracle_market, run_market
from marketeq.rl.simulator import PathSimulator, Processes
from marketeq.rl.vec_env import MarketVecEnv

ENV_ID = "marketeq/Market-v0"
if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="marketeq.rl.env:MarketEnv")

__all__ = ["ENV_ID", "MarketEnv", "MarketError", "MarketVecEnv", "PathSimulator", "Processes", "SolvedMarket",
           "agent_simulator", "as_market", "oracle_market", "run_market"]
