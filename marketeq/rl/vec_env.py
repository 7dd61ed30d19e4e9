"""Many paths in one ``step`` call: the stable-baselines3 ``VecEnv`` over a :class:`PathSimulator`.

All environments share the grid, so their episodes start and end together and one batched tensor step
advances every path; resets draw a new batch of seeded increments.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from marketeq.model.brownian import BrownianSource, stream_seed
from marketeq.rl.env import box_spaces
from marketeq.rl.simulator import PathSimulator


class MarketVecEnv(VecEnv):
    """``n_envs`` paths of ``sim`` stepped at once; ``seed`` (or sb3's ``seed()``) seeds the increments.

    Infos carry sb3's ``terminal_observation`` and an ``episode`` record (return ``r``, length ``l`` and the
    unshaped ``objective``); ``last_episodes`` holds the means over the last finished batch.
    """

    render_mode = None

    def __init__(self, sim: PathSimulator, n_envs: int, seed: int = 0) -> None:
        self.sim = sim
        self.noise = self._noise(seed)
        self.last_episodes: dict[str, float] = {}
        obs_space, act_space = box_spaces(sim)
        super().__init__(n_envs, obs_space, act_space)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(n_envs)
        self._started = time.perf_counter()

    def _noise(self, seed: int) -> BrownianSource:
        """Increments from the run seed's own "rl" stream: never the paths of training or testing."""
        m = self.sim.model
        return BrownianSource(stream_seed(seed, "rl"), m.n_steps, m.dt, m.device, m.dtype)

    def _start(self) -> np.ndarray:
        self._returns[:] = 0.0
        return self._numpy(self.sim.start(self.noise.draw(self.num_envs)))

    @staticmethod
    def _numpy(obs: torch.Tensor) -> np.ndarray:
        return obs.detach().cpu().numpy().astype(np.float32)

    def reset(self) -> VecEnvObs:
        if self._seeds[0] is not None:
            self.noise = self._noise(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        return self._start()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        action = torch.as_tensor(np.asarray(self._actions, dtype=np.float64), device=self.sim.model.device)
        obs, reward, done = self.sim.step(action.reshape(self.num_envs, -1))
        rewards = reward.detach().cpu().numpy()
        self._returns += rewards
        obs_np = self._numpy(obs)
        if not done:
            return obs_np, rewards.astype(np.float32), np.zeros(self.num_envs, dtype=bool), \
                [{} for _ in range(self.num_envs)]
        elapsed = round(time.perf_counter() - self._started, 6)
        length = self.sim.model.n_steps
        objective = self.sim.objective.detach().cpu().numpy()
        self.last_episodes = {"return": float(self._returns.mean()), "objective": float(objective.mean())}
        infos = [{"terminal_observation": obs_np[i],
                  "episode": {"r": float(self._returns[i]), "l": length, "t": elapsed,
                              "objective": float(objective[i])}}
                 for i in range(self.num_envs)]
        return self._start(), rewards.astype(np.float32), np.ones(self.num_envs, dtype=bool), infos

    def close(self) -> None:
        pass

    # --- one object stands for every environment ---------------------------------------------------
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
