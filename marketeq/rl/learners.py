"""stable-baselines3 learners for marketeq's markets: algorithm settings, policies as rates functions, and
the adapter from sb3 training steps to marketeq's progress events.

Settings that measurably matter (single-agent problem of scripts/bench_rl.py, numbers in docs/rl.md):
smooth (tanh) networks, since a ReLU critic is piecewise linear in the action and gives the actor a poor
gradient on a problem whose optimum is linear in the state; a discount of 1, which with time in the
observation is the undiscounted finite-horizon objective; rewards in natural units per unit of time, so
that one step's reward is O(1) whatever the horizon (SAC's entropy bonus would otherwise swamp the O(dt)
rewards); large replay batches, because one action changes the return by O(dt) while one step's noise
moves it by O(sqrt(dt)).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import Tensor, nn

from marketeq.model.market import MarketModel
from marketeq.model.rollout import RatesFn
from marketeq.rl.simulator import PathSimulator, PolicyFn
from marketeq.rl.vec_env import MarketVecEnv
from marketeq.solvers.events import Callback, IterationEnded, PhaseEnded, PhaseStarted, RunControl
from marketeq.solvers.networks import Scales

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3}
# Paths simulated at once: off-policy learners take one gradient step per batched env step, so a modest
# batch keeps data fresh; PPO estimates its gradient from whole batches of episodes and wants many.
N_ENVS = {"ppo": 512, "sac": 64, "td3": 64}


def algorithm_kwargs(name: str, n_steps: int, n_envs: int) -> dict[str, Any]:
    """Per-algorithm settings beyond the shared ones (discount 1, tanh networks)."""
    if name == "sac":
        return {"batch_size": 1024}
    if name == "td3":
        # Target smoothing and exploration noise at sb3's defaults (0.2, 0.1) exceed typical optimal actions.
        return {"batch_size": 1024, "target_policy_noise": 0.05, "target_noise_clip": 0.1}
    if name == "ppo":
        # One rollout is one batch of whole episodes; a small initial std keeps actions inside [-1, 1].
        return {"n_steps": n_steps, "batch_size": n_steps * n_envs // 8, "n_epochs": 10, "gae_lambda": 0.95,
                "log_std_init": -1.5}
    raise ValueError(f"algorithm {name!r}: use one of {', '.join(ALGORITHMS)}")


def make_learner(name: str, env: MarketVecEnv, hidden: list[int], learning_rate: float | Schedule,
                 seed: int, device: str = "cpu") -> BaseAlgorithm:
    """An sb3 algorithm on ``env`` with marketeq's settings; it logs nowhere (progress goes by events)."""
    kwargs = algorithm_kwargs(name, env.sim.model.n_steps, env.num_envs)
    policy_kwargs: dict[str, Any] = {"net_arch": list(hidden), "activation_fn": nn.Tanh}
    if "log_std_init" in kwargs:
        policy_kwargs["log_std_init"] = kwargs.pop("log_std_init")
    if name == "td3":
        n_actions = env.sim.n_actions
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n_actions), 0.05 * np.ones(n_actions))
    learner = ALGORITHMS[name]("MlpPolicy", env, learning_rate=learning_rate, gamma=1.0, seed=seed,
                               device=device, policy_kwargs=policy_kwargs, **kwargs)
    learner.set_logger(Logger(folder=None, output_formats=[]))
    return learner


def natural_reward_scale(model: MarketModel, agents: list[int], weights: Tensor | None = None) -> float:
    """Scale turning one step's reward into utility per unit of time in natural units.

    The natural flow of agent n is ``gamma_n (alpha |xi_n| sqrt(T)/alpha)^2`` (its risk term at the typical
    size of W); with weights the weighted mean is used, as the central policy's reward weighs agents.
    """
    index = torch.as_tensor(agents, device=model.device)
    unit = model.gamma[index] * (model.alpha * Scales(model).deviation[index]) ** 2
    if weights is not None:  # agents_step_reward pays sum_n w_n flow_n / (N K) per step
        return float(model.n_agents * model.n_steps / (unit * weights).sum())
    return float(1.0 / (model.dt * unit.mean()))


def deterministic_policy(learner: BaseAlgorithm | BasePolicy) -> PolicyFn:
    """Deterministic actions of an sb3 algorithm or policy as a torch function of observations (clipped to
    [-1, 1])."""

    def act(obs: Tensor) -> Tensor:
        actions, _ = learner.predict(obs.detach().cpu().float().numpy(), deterministic=True)
        return torch.as_tensor(np.clip(actions, -1.0, 1.0), dtype=obs.dtype, device=obs.device)

    return act


def engine_rates(sim: PathSimulator, policy: PolicyFn) -> RatesFn:
    """A policy over all agents as the engine's rates function ``(k, D, W) -> (B, N)`` (no market state)."""
    phibar = sim.model.phibar
    return lambda k, D, W: sim.rates(policy(sim.observe(k, D + phibar, W)))


def logged_losses(learner: BaseAlgorithm, prefix: str = "agents") -> dict[str, float]:
    """sb3's latest training losses (``train/critic_loss`` ...) as ``agents/sb3_critic`` ...: recorded in the
    history, while progress bars and plots show ``agents/loss`` as for the pathwise learner."""
    names = {key: key.removeprefix("train/").removesuffix("_loss") for key in learner.logger.name_to_value
             if key.startswith("train/") and key.endswith("loss")}
    return {f"{prefix}/sb3_{'total' if name == 'loss' else name}": float(learner.logger.name_to_value[key])
            for key, name in names.items()}


class IterationEvents(BaseCallback):
    """sb3 callback emitting marketeq events: every ``steps_per_iteration`` env steps is one iteration.

    Emits ``PhaseStarted`` when training starts, ``IterationEnded`` per iteration (losses: minus the mean
    objective of the last batch of episodes as ``agents/loss``, their shaped return, sb3's losses) and
    ``PhaseEnded`` at the end; a stop requested on ``control`` ends ``learn()`` at the next env step.
    """

    def __init__(self, callback: Callback, steps_per_iteration: int, iterations: int,
                 control: RunControl | None = None, round_index: int = 0) -> None:
        super().__init__()
        self.events, self.per_iteration, self.iterations = callback, steps_per_iteration, iterations
        self.control, self.round = control, round_index
        self.iteration = 0
        self.started = time.perf_counter()
        self.losses: dict[str, float] = {}
        self.stopped = False

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()
        self.events.on_event(PhaseStarted(self.round, "agents", self.iterations))

    def _on_step(self) -> bool:
        if self.n_calls % self.per_iteration == 0:
            self.losses = iteration_losses(self.model)
            self.events.on_event(IterationEnded(self.round, "agents", self.iteration, self.iteration + 1,
                                                self.losses, time.perf_counter() - self.started))
            self.iteration += 1
        self.stopped = self.control is not None and self.control.stop_requested
        return not self.stopped

    def _on_training_end(self) -> None:
        self.events.on_event(PhaseEnded(self.round, "agents", self.losses))


def iteration_losses(learner: BaseAlgorithm) -> dict[str, float]:
    """What one iteration reports: the last batch of episodes of the learner's env and sb3's losses."""
    env = learner.get_env()
    episodes = getattr(env, "last_episodes", {}) or {}
    losses = logged_losses(learner)
    if episodes:
        losses["agents/loss"] = -episodes["objective"]
        losses["agents/return"] = episodes["return"]
    return losses
