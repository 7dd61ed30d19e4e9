"""The market environments: API checkers, rewards against the engine's utilities, markets from results."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import marketeq
from marketeq.model.brownian import Brownian, brownian_test_set
from marketeq.rl import ENV_ID, MarketEnv, MarketError, MarketVecEnv, agent_simulator, as_market
from marketeq.solvers.losses import agent_utilities, agents_loss


def test_env_passes_the_gymnasium_and_sb3_checkers(riccati_market, tanh_market):
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unbounded observation box is by design
        for env in (MarketEnv(tanh_market), MarketEnv(riccati_market, 2, market_state=True, baseline=True)):
            gym_check(env)
            sb3_check(env)
        made = gym.make(ENV_ID, market=riccati_market, agent=1)
    obs, _ = made.reset(seed=3)
    assert made.observation_space.contains(obs) and obs.dtype == np.float32
    assert obs[0] == 0.0 and obs[1] == 0.0  # t = 0, holding the frictionless position


def _path_utility(market, agent, rate_fn, brownian):
    """The engine's J of ``agent`` trading at rate_fn(k, phi, W) along ``brownian``, others in equilibrium."""
    m = market.model
    eq = market.paths(brownian)
    phi, phidot = eq.phi.clone(), eq.phidot.clone()
    phi_k = m.phibar[agent].expand(brownian.n_paths).clone()
    for k in range(m.n_steps):
        phi[:, k, agent] = phi_k
        phidot[:, k, agent] = rate_fn(k, phi_k, brownian.W[:, k])
        phi_k = phi_k + phidot[:, k, agent] * m.dt
    phi[:, -1, agent], phidot[:, -1, agent] = phi_k, 0.0
    return agent_utilities(m, eq.mu, eq.sigma, phi, phidot, eq.W)[:, agent]


def test_single_env_rewards_sum_to_the_engine_utility(riccati_market):
    """A feedback policy on one path: the episode's rewards add up to the engine's Euler J of that path."""
    agent = 1
    env = MarketEnv(riccati_market, agent)
    m, bound = riccati_market.model, float(env.sim.rate_bound[0])
    obs, _ = env.reset(seed=11)
    dW = env.sim.brownian.dW.clone()
    total, done, k = 0.0, False, 0
    while not done:  # rate = -3 * gap + 2 * sin(k) in units of the bound, the gap read from the observation
        action = np.clip([-0.3 * obs[1] + 0.2 * np.sin(k)], -1, 1).astype(np.float32)
        obs, reward, done, truncated, _ = env.step(action)
        total, k = total + reward, k + 1
    assert k == m.n_steps and not truncated
    unit = float(env.sim.deviation_unit[0])

    def rate_fn(step, phi, W):
        gap = (phi - (m.phibar[agent] - m.xi[agent] * W / m.alpha)) / unit
        return (-0.3 * gap + 0.2 * np.sin(step)).clamp(-1, 1) * bound

    expected = _path_utility(riccati_market, agent, rate_fn, Brownian.from_increments(dW))
    assert total == pytest.approx(float(expected[0]), rel=1e-5, abs=1e-9)
    assert abs(total) > 1e-3


def test_vec_env_episodes_report_the_engine_utility(tanh_market):
    """Many paths in one step call: each episode's objective is that path's Euler J, then all paths reset."""
    m = tanh_market.model
    sim = agent_simulator(tanh_market, 0, baseline=True, reward_scale=7.0)
    env = MarketVecEnv(sim, 32, seed=5)
    obs = env.reset()
    W = sim.brownian.W.clone()
    returns = np.zeros(32)
    for _ in range(m.n_steps):
        obs, rewards, dones, infos = env.step(-0.5 * obs[:, 1:2])
        returns += rewards
    assert dones.all() and all("terminal_observation" in info for info in infos)
    objective = np.array([info["episode"]["objective"] for info in infos])
    assert np.allclose([info["episode"]["r"] for info in infos], returns, rtol=1e-5)
    unit, bound = float(sim.deviation_unit[0]), float(sim.rate_bound[0])

    def rate_fn(k, phi, W_k):
        gap = (phi - (m.phibar[0] - m.xi[0] * W_k / m.alpha)) / unit
        return (-0.5 * gap).clamp(-1, 1) * bound

    expected = _path_utility(tanh_market, 0, rate_fn, Brownian.from_increments(torch.diff(W, dim=1)))
    np.testing.assert_allclose(objective, expected.numpy(), rtol=1e-5)
    assert not torch.equal(sim.brownian.W, W)  # the auto-reset drew new paths
    assert (returns != objective).all()  # the baseline and the scale shape the reward, not the objective


def test_closed_form_policy_through_the_env_matches_the_oracle(tanh_market):
    """The tanh feedback, read from observations and written as actions, earns exactly the oracle's J."""
    from marketeq.oracles.tanh import tanh_gain
    from marketeq.rl.agent_training import evaluate_agent

    m = tanh_market.model
    sim = agent_simulator(tanh_market, 0)
    kappa = float(np.sqrt(float(m.gamma[0]) * m.alpha**2 / m.cost.lam))

    def closed_form(obs):
        tau = m.horizon * (1.0 - obs[:, 0])
        rate = -tanh_gain(kappa, tau) * obs[:, 1] * sim.deviation_unit[0]
        return (rate / sim.rate_bound[0]).unsqueeze(-1)

    report = evaluate_agent(tanh_market, 0, closed_form)
    assert abs(report.policy_minus_equilibrium.value) < 1e-5 * abs(report.equilibrium.value)
    assert report.relative_regret == pytest.approx(0.0, abs=1e-4)
    assert report.policy_minus_no_trade.value > 10 * report.policy_minus_no_trade.stderr


def test_central_rewards_are_minus_the_agents_loss(tiny):
    """The loop's central policy: summed rewards, averaged over paths, are minus the pathwise agents' loss."""
    from marketeq.runtime import Runtime
    from marketeq.solvers.rlink import ReinforcementLinkSolver

    scenario = tiny.replace(**{"solver.agent_learner": "sb3:sac", "solver.clearing_weight": [3.0]})
    solver = ReinforcementLinkSolver(scenario, Runtime.from_settings("cpu", "float64", 0))
    sim = solver.agents.sim
    sim.baseline, sim.reward_scale = False, 1.0
    b = brownian_test_set(0, 64, solver.model.n_steps, solver.model.dt)
    gen = torch.Generator().manual_seed(0)
    gains = torch.randn(sim.obs_dim, sim.n_actions, generator=gen, dtype=torch.float64) * 0.3
    phi, rates, total = sim.rollout(lambda obs: obs @ gains, b)
    mu, sigma = sim.market.mu, sim.market.sigma
    utilities = agent_utilities(solver.model, mu, sigma, phi, rates, b.W)
    loss, _ = agents_loss(solver.model, utilities, rates, solver.agent_weights, 3.0)
    assert float(total.mean()) == pytest.approx(-float(loss), rel=1e-9)
    assert rates[:, :-1].mean(-1).abs().max() > 0  # the loss has a clearing term to check
    # the clearing residual is the rates' mean shrunk by the net share: exploration stays near clearing
    actions = torch.tensor([[0.5, -0.2, 0.9]], dtype=torch.float64)
    raw = actions * sim.rate_bound
    assert float(sim.rates(actions).mean()) == pytest.approx(sim.net_share * float(raw.mean()))


def test_market_rebuilt_from_a_result_file_reproduces_its_paths(tiny, tmp_path):
    short = tiny.replace(**{"solver.rounds": 1, "solver.agents_iterations": [10],
                            "solver.market_iterations": [10]})
    result = marketeq.solve(short)
    marketeq.write_result(result, tmp_path / "r.h5")
    market = as_market(tmp_path / "r.h5")
    m = market.model
    paths = market.paths(brownian_test_set(short.run.seed, short.run.test_paths, m.n_steps, m.dt)).numpy()
    for field in ("phi", "mu", "sigma", "S"):
        np.testing.assert_allclose(getattr(paths, field), getattr(result.paths, field), rtol=1e-10,
                                   atol=1e-12)
    with pytest.raises(MarketError, match="agent = 3"):
        MarketEnv(market, 3)
