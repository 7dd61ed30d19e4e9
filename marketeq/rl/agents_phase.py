"""The reinforcement-link loop's agents' phase trained by stable-baselines3 (``agent_learner = "sb3:..."``).

One central policy acts for all N agents (sb3 has no multi-agent algorithms, and a central policy is what
the generator is): its action is every agent's rate, its reward minus the pathwise generator's loss,
step by step (:func:`agents_step_reward`: the weighted utility flows minus the clearing penalty).

Price taking: the market's mu depends on the agents' holdings, and an RL agent optimising through the
environment would learn to move it. So each batch of episodes faces the frozen market evaluated along the
policy's own deterministic roll-out, drawn when the batch starts, which the actions of the episode cannot
change: the counterpart of the pathwise learner's detached market.

Each iteration of the phase is one ``learn()`` call on one batch of episodes, driven by the solver's own
iteration loop, so events, pause/stop, the NaN guard and snapshots work as for the pathwise learner. The
policy the rest of the loop sees is a running average of sb3's iterates (``AVERAGING``).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from marketeq.model.brownian import Brownian
from marketeq.model.rollout import RatesFn, roll_holdings
from marketeq.rl.learners import (
    ALGORITHMS,
    N_ENVS,
    deterministic_policy,
    engine_rates,
    iteration_losses,
    make_learner,
    natural_reward_scale,
)
from marketeq.rl.simulator import PathSimulator, Processes
from marketeq.rl.vec_env import MarketVecEnv
from marketeq.scenario import RoundPlan
from marketeq.solvers.agent_learners import SolverView
from marketeq.solvers.losses import agents_step_reward

# The central policy's mean rate (the clearing residual) is scaled by this: exploration noise on independent
# rates would otherwise make the clearing penalty dominate every reward (see PathSimulator.rates).
NET_SHARE = 0.1
# The market sees an exponential average of the policy's parameters over iterations (about the last 20
# batches): the final sb3 iterate is noisy, and each market phase fits whatever roll-out it is shown.
AVERAGING = 0.05


class SB3Agents:
    """A stable-baselines3 algorithm (``ppo``, ``sac``, ``td3``) as the loop's agents' phase."""

    def __init__(self, solver: SolverView, algo: str) -> None:
        if algo not in ALGORITHMS:
            raise ValueError(f"agent learner 'sb3:{algo}': use one of {', '.join(ALGORITHMS)}")
        self.solver, self.algo = solver, algo
        model, settings = solver.model, solver.scenario.solver
        agents = list(range(model.n_agents))
        self.clearing_weight = settings.round_schedule(0).clearing_weight
        self.sim = PathSimulator(model, agents, self._processes, self._reward, baseline=True,
                                 reward_scale=natural_reward_scale(model, agents, solver.agent_weights),
                                 net_share=NET_SHARE)
        self.env = MarketVecEnv(self.sim, N_ENVS[algo], seed=solver.runtime.seed)
        self._new_learner(settings.round_schedule(0).agents_lr)

    def _new_learner(self, learning_rate: float) -> None:
        s = self.solver
        self.learner = make_learner(self.algo, self.env, s.scenario.solver.agents_hidden, learning_rate,
                                    s.runtime.seed, str(s.runtime.device))
        self.average = copy.deepcopy(self.learner.policy)
        self.average.requires_grad_(False)

    @torch.no_grad()
    def _update_average(self) -> None:
        for average, current in zip(self.average.parameters(), self.learner.policy.parameters(), strict=True):
            average.lerp_(current, AVERAGING)

    def _processes(self, brownian: Brownian) -> Processes:
        """The frozen market along the policy's own deterministic roll-out (price taking)."""
        phi, _ = roll_holdings(self.solver.model, brownian.W, self.rates())
        mu, sigma = self.solver.market_paths(phi, brownian.W)
        return Processes(mu, sigma)

    def _reward(self, flow: Tensor, rate: Tensor) -> Tensor:
        s = self.solver
        return agents_step_reward(s.model, flow, rate, s.agent_weights, self.clearing_weight)

    # --- the solver's AgentsPhase interface ------------------------------------------------------------
    def train(self, round_index: int, plan: RoundPlan) -> None:
        s = self.solver
        if round_index > 0 and not s.scenario.solver.warm_start:
            self._new_learner(plan.agents_lr)
        self.learner.lr_schedule = lambda _left: plan.agents_lr
        self.clearing_weight = plan.clearing_weight
        buffer = getattr(self.learner, "replay_buffer", None)
        if buffer is not None:
            buffer.reset()  # its rewards were paid by the market before the last market phase
        per_iteration = self.env.num_envs * s.model.n_steps  # one batch of whole episodes

        def iteration(i: int) -> dict[str, Tensor]:
            # A fresh start on the first iteration: the pending batch was drawn against the old market.
            self.learner.learn(per_iteration, reset_num_timesteps=i == 0)
            self._update_average()
            return {key: torch.tensor(value) for key, value in iteration_losses(self.learner).items()}

        s.iterate(round_index, "agents", plan.agents_iterations, iteration)

    def rates(self) -> RatesFn:
        """The averaged policy's rates: what the market phase, the snapshots and the result see."""
        return engine_rates(self.sim, deterministic_policy(self.average))

    @property
    def module(self) -> torch.nn.Module:
        """The averaged policy (sb3's own iterate and optimiser are not checkpointed: a resumed sb3 phase
        restarts its learner from this average)."""
        return self.average

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        self.learner.policy.load_state_dict(weights)
        self.average.load_state_dict(weights)
