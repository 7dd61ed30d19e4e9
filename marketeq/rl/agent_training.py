"""Train one agent's RL policy in a solved market and compare its utility with the equilibrium's.

The comparison runs on the market's seeded test set: the trained policy, the agent's equilibrium policy and
not trading at all face the same equilibrium processes along the same paths, and the utilities come from
the engine's :func:`agent_utilities`, so the differences are paired and their standard errors small.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from marketeq.files import atomic_path
from marketeq.model.brownian import brownian_test_set
from marketeq.model.economics import agent_utilities
from marketeq.results import Metric, mean_se
from marketeq.rl.env import agent_simulator
from marketeq.rl.learners import (
    N_ENVS,
    IterationEvents,
    deterministic_policy,
    make_learner,
    natural_reward_scale,
)
from marketeq.rl.markets import MarketError, SolvedMarket
from marketeq.rl.simulator import PolicyFn
from marketeq.rl.vec_env import MarketVecEnv
from marketeq.solvers.events import Callback, CallbackList, RunControl, RunEnded, RunStarted


@dataclass(frozen=True)
class AgentReport:
    """Utilities (Euler J per path, mean ± standard error) of one agent on the test set."""

    agent: int  # 0-based
    name: str
    n_paths: int
    policy: Metric
    equilibrium: Metric
    no_trade: Metric
    policy_minus_equilibrium: Metric  # paired over paths
    policy_minus_no_trade: Metric

    @property
    def relative_regret(self) -> float:
        """(J_eq - J_pi) / (J_eq - J_no_trade): 0 at the equilibrium policy, 1 for not trading; negative
        when the policy beats the agent's equilibrium policy (which then was not a best response)."""
        return -self.policy_minus_equilibrium.value / (self.equilibrium.value - self.no_trade.value)


def train_agent(market: SolvedMarket, agent: int, algo: str = "sac", timesteps: int = 500_000, *,
                seed: int = 0, hidden: Iterable[int] = (64, 64), learning_rate: float = 1e-3,
                market_state: bool = False, callbacks: Iterable[Callback] = (),
                control: RunControl | None = None, device: str = "cpu") -> tuple[BaseAlgorithm, PolicyFn]:
    """Train agent ``agent`` (0-based) against the market's equilibrium processes.

    One iteration is one batch of episodes (the env's paths over the whole grid); events go to
    ``callbacks`` (RunStarted, per-iteration progress, RunEnded) and ``control`` can stop early. The learning
    rate decays linearly to a tenth of ``learning_rate`` (sb3 passes the progress left, 1 -> 0), which
    steadies the final policy.
    Returns the sb3 algorithm and its deterministic policy over observations.
    """
    model = market.model
    sim = agent_simulator(market, agent, market_state=market_state, baseline=True,
                          reward_scale=natural_reward_scale(model, [agent]))
    env = MarketVecEnv(sim, N_ENVS[algo], seed=seed)
    decay = lambda left: learning_rate * (0.1 + 0.9 * left)  # noqa: E731
    learner = make_learner(algo, env, list(hidden), decay, seed, device)
    per_iteration = model.n_steps
    iterations = -(-timesteps // (env.num_envs * per_iteration))  # whole batches of episodes, rounded up
    events = CallbackList(list(callbacks))
    name = market.scenario.agent_names[agent]
    events.on_event(RunStarted(market.scenario.name, f"sb3:{algo}", 1, iterations, 1, (name,)))
    progress = IterationEvents(events, per_iteration, iterations, control)
    if iterations:
        learner.learn(iterations * env.num_envs * per_iteration, callback=progress)
    status = "interrupted" if progress.stopped else "completed"
    events.on_event(RunEnded(status, progress.iteration, "" if status == "completed" else
                             f"stopped at iteration {progress.iteration}"))
    return learner, deterministic_policy(learner)


@torch.no_grad()
def evaluate_agent(market: SolvedMarket, agent: int, policy: PolicyFn, n_paths: int | None = None,
                   seed: int | None = None, market_state: bool = False) -> AgentReport:
    """The agent's utility under ``policy``, under its equilibrium policy and without trading, on the
    scenario's seeded test set (``n_paths`` and ``seed`` default to the scenario's run settings)."""
    model, run = market.model, market.scenario.run
    test = brownian_test_set(run.seed if seed is None else seed, n_paths or run.test_paths, model.n_steps,
                             model.dt, model.device, model.dtype)
    eq = market.paths(test)
    sim = agent_simulator(market, agent, market_state=market_state)
    phi, rates, _ = sim.rollout(policy, test)

    def utility(own_phi: torch.Tensor, own_rates: torch.Tensor) -> np.ndarray:
        holdings, trades = eq.phi.clone(), eq.phidot.clone()
        holdings[..., agent], trades[..., agent] = own_phi, own_rates
        J = agent_utilities(model, eq.mu, eq.sigma, holdings, trades, eq.W)[:, agent]
        return J.cpu().double().numpy()

    J_pi = utility(phi[..., 0], rates[..., 0])
    J_eq = utility(eq.phi[..., agent], eq.phidot[..., agent])
    still = torch.zeros_like(eq.phidot[..., agent])
    J_nt = utility(still + model.phibar[agent], still)
    return AgentReport(agent, market.scenario.agent_names[agent], test.n_paths, mean_se(J_pi), mean_se(J_eq),
                       mean_se(J_nt), mean_se(J_pi - J_eq), mean_se(J_pi - J_nt))


def save_learner(learner: BaseAlgorithm, path: str | os.PathLike[str]) -> Path:
    """Save the sb3 model as a zip file atomically (hidden temporary file in the same directory, then
    :func:`os.replace`); the directory must exist. Raises MarketError when it cannot be written."""
    target = Path(path)
    if not target.parent.is_dir():
        raise MarketError(f"-o {target}: directory {str(target.parent)!r} does not exist; create it first")
    try:
        with atomic_path(target, suffix=".tmp.zip") as temp:  # sb3 adds ".zip" to a name without it
            learner.save(temp)
    except OSError as exc:
        raise MarketError(f"-o {target}: cannot be written ({exc.strerror or exc})") from None
    return target
