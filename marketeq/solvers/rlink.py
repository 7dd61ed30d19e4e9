"""The reinforcement-link solver (model.md section 4): agents (generator) against market (discriminator).

Each round trains the agents against the frozen market (price takers: every market output is detached),
then the market against the agents' frozen roll-out. With the agents frozen their holdings do not depend
on the market, so the market phase reuses one cached roll-out and evaluates the market on every time
step in one batch. The cache is refreshed every MARKET_REFRESH iterations; the noise generator's state
before each refresh is part of the solver's state, so a resumed or rolled-back run rebuilds the same cache.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from marketeq.model.brownian import Brownian
from marketeq.model.rollout import Paths, RatesFn, price_path, roll_holdings, simulate
from marketeq.runtime import Runtime
from marketeq.scenario import RoundPlan, Scenario, ScenarioError
from marketeq.solvers.agent_learners import SolverView, load_learner
from marketeq.solvers.base import Solver
from marketeq.solvers.implied import implied_mu, newton_corrected_mu
from marketeq.solvers.losses import StateProjection, agent_utilities, agents_loss, link_loss, terminal_error
from marketeq.solvers.networks import MarketNet, PolicyNet
from marketeq.solvers.state import State, to_numpy

MARKET_REFRESH = 10  # market iterations per cached agents' roll-out
# holdings, rates, increments, the state projection of the link (None: path-wise link), and the return
# that solves the link at the volatility of the moment the roll-out was drawn (exact link only)
Rollout = tuple[Tensor, Tensor, Brownian, StateProjection | None, Tensor | None]


class ReinforcementLinkSolver(Solver):
    """Alternating rounds of price-taking agents and a market tied to them by the reinforcement link."""

    name = "rlink"

    def __init__(self, scenario: Scenario, runtime: Runtime) -> None:
        super().__init__(scenario, runtime)
        settings, m = scenario.solver, self.model
        self.mu_known = settings.mu_source == "known"
        self.nonlinear = settings.nonlinear == "on" or (settings.nonlinear == "auto" and m.cost.q != 2.0)
        expectation = settings.link_expectation
        self.projected_link = expectation == "regression" or (expectation == "auto" and m.cost.q != 2.0)
        power = "relative" if m.cost.q != 2.0 else "increments"
        self.link_form = power if settings.link_form == "auto" else settings.link_form
        solve = settings.link_solve
        self.mu_implied = settings.mu_source == "implied"
        self.exact_link = self.mu_implied or (
            not self.mu_known and (solve == "exact" or (solve == "auto" and m.cost.q != 2.0)))
        self.projected_link |= self.exact_link
        self._build_networks()
        self._opts: dict[str, torch.optim.Optimizer] = {}
        self._cache: Rollout | None = None
        self._cache_noise: np.ndarray | None = None  # noise state before the cached roll-out was drawn
        self._cache_sigma: np.ndarray | None = None  # the market's sigma when it was drawn
        self.agent_weights = (m.xi.abs().max() / m.xi.abs().clamp_min(1e-12)).pow(2).clamp(max=100.0)
        self.rate_scale = float(self.policy.scales.rate.mean())
        # every step draws, rolls out and descends once (the market cache's state is its noise at the start):
        # a stop may drop the iteration in progress; stable-baselines3 agents change their state throughout
        self.stops_within_iterations = settings.agent_learner == "pathwise"
        self.agents = self._agents_phase(settings.agent_learner)

    def _agents_phase(self, learner: str) -> AgentsPhase:
        if learner == "pathwise":
            return PathwiseAgents(self)
        family, _, algo = learner.partition(":")
        try:  # stable-baselines3 is loaded only when asked for
            learner_class = load_learner(family)
        except ImportError as exc:
            needs = f"needs gymnasium and stable-baselines3 ({exc.name} missing): pip install 'marketeq[rl]'"
            raise ScenarioError("solver.agent_learner", learner, f"{needs} or use 'pathwise'") from None
        view = SolverView(self.model, self.scenario, self.runtime, self.agent_weights, self._market_paths,
                          self._iterate)
        return learner_class(view, algo)

    # --- the market as the agents see it -------------------------------------------------------------
    def _market_paths(self, phi: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, sigma), each (B, K+1), of the current market along given holdings."""
        times = self.model.times
        sigma = self.market.sigma(times).expand(W.shape)
        if self.mu_known:
            return self.model.return_identity(sigma, phi, W), sigma
        if self.mu_implied:
            return implied_mu(self.model, sigma, phi, W, self._projection(phi, W)), sigma
        mu = self.market.mu(times.unsqueeze(-1), phi - self.model.phibar, W, self.market.mu_gains(times))
        return mu, sigma

    def _rollout(self, W: Tensor) -> tuple[Tensor, Tensor]:
        return roll_holdings(self.model, W, self.agents.rates())

    # --- one iteration of each player ----------------------------------------------------------------
    def _agents_step(self, optimizer: torch.optim.Optimizer, clearing_weight: float) -> dict[str, Tensor]:
        b = self.noise.draw(self.scenario.solver.batch_size)
        phi, phidot = self._rollout(b.W)
        with torch.no_grad():  # price taking: the agents cannot move mu or sigma
            mu, sigma = self._market_paths(phi, b.W)
        utilities = agent_utilities(self.model, mu, sigma, phi, phidot, b.W)
        loss, logs = agents_loss(self.model, utilities, phidot, self.agent_weights, clearing_weight)
        self._descend(optimizer, loss)
        return logs

    def _market_step(self, optimizer: torch.optim.Optimizer, cache: Rollout, i: int = 0
                     ) -> dict[str, Tensor]:
        phi, _, b, projection, mu_solved = cache
        m = self.model
        logs: dict[str, Tensor] = {}
        if mu_solved is None:
            mu, sigma = self._market_paths(phi, b.W)
        else:
            # The price follows the return the link implies at this sigma; the mu network learns that return
            # on a slice of the paths (evaluating it on all of them is most of a step's cost).
            sigma = self.market.sigma(m.times).expand(b.W.shape)
            mu = newton_corrected_mu(m, mu_solved, sigma, phi, b.W, projection)
            if not self.mu_implied:
                rows = self._fit_rows(i, b.W.shape[0])
                fitted = self._market_paths(phi[rows], b.W[rows])[0]
                miss = (fitted - mu[rows].detach())[:, :-1] / self.market.scales.mu
                logs["market/mu_fit"] = miss.pow(2).mean()
        S = price_path(m, mu, sigma, b.dW, self.market.s0)
        terminal = terminal_error(m, S, b.W).mean() / (m.alpha**2 * m.horizon)
        logs["market/terminal"] = terminal
        loss = terminal + logs.get("market/mu_fit", 0.0)
        if not self.mu_known and mu_solved is None:
            settings = self.scenario.solver
            link = link_loss(m, mu, sigma, phi, b.W, self.rate_scale, self.link_form, projection)
            loss = loss + settings.link_weight * link
            logs["market/link"] = link
        self._descend(optimizer, loss)
        logs["market/loss"] = loss
        return logs

    # --- the schedule --------------------------------------------------------------------------------
    def _train(self) -> None:
        settings = self.scenario.solver
        for r in range(settings.rounds):
            plan = settings.round_schedule(r)
            if r > 0 and not settings.warm_start:
                self._build_policy()  # a fresh best response; the market carries on, so rounds chain
            self.agents.train(r, plan)
            market_opt = torch.optim.Adam(self.market.parameters(), lr=plan.market_lr)
            self._opts = {"market": market_opt}
            self._iterate(r, "market", plan.market_iterations,
                          lambda i, opt=market_opt: self._market_step(opt, self._market_cache(i), i))

    def _fit_rows(self, i: int, n_paths: int) -> slice:
        """The cached paths the mu network fits at market iteration ``i``: a batch, cycling through them."""
        size = min(self.scenario.solver.batch_size, n_paths)
        start = (i % MARKET_REFRESH) * size % max(n_paths - size + 1, 1)
        return slice(start, start + size)

    def _market_cache(self, i: int) -> Rollout:
        """The agents' frozen roll-out for market iteration ``i``, redrawn every MARKET_REFRESH iterations."""
        n_paths = self.scenario.solver.market_batch_size
        if i % MARKET_REFRESH == 0:
            self._cache_noise = to_numpy(self.noise.get_state())
            if self.exact_link:
                with torch.no_grad():
                    self._cache_sigma = to_numpy(self.market.sigma(self.model.times))
            self._cache = self._frozen_rollout(n_paths)
        elif self._cache is None:  # restored between refreshes: draw the same roll-out again
            if self._cache_noise is None:
                raise RuntimeError("market roll-out cache lost without the noise state to rebuild it")
            current = self.noise.get_state()
            self.noise.set_state(torch.from_numpy(self._cache_noise.copy()))
            self._cache = self._frozen_rollout(n_paths)
            self.noise.set_state(current)
        return self._cache

    @torch.no_grad()
    def _frozen_rollout(self, n_paths: int) -> Rollout:
        b = self.noise.draw(n_paths)
        phi, phidot = self._rollout(b.W)
        projection = self._projection(phi, b.W) if self.projected_link else None
        mu_solved = None
        if self.exact_link:
            # The volatility of the refresh, kept in the solver's state: a resumed run solves the same link.
            sigma = torch.as_tensor(self._cache_sigma, device=b.W.device).to(b.W.dtype).expand(b.W.shape)
            mu_solved = implied_mu(self.model, sigma, phi, b.W, projection)
        return phi, phidot, b, projection, mu_solved

    def _projection(self, phi: Tensor, W: Tensor) -> StateProjection:
        """Conditional expectations given the state along these holdings and paths (fitted across them)."""
        return StateProjection.along(self.model, self.policy.scales, phi, W)

    def _build_networks(self) -> None:
        settings, rt = self.scenario.solver, self.runtime
        self._build_policy()
        self.market = MarketNet(self.model, settings.market_hidden, self.nonlinear,
                                settings.sigma_at_maturity == "pinned").to(rt.device, rt.dtype)

    def _build_policy(self) -> None:
        settings, rt = self.scenario.solver, self.runtime
        self.policy = PolicyNet(self.model, settings.agents_hidden, self.nonlinear,
                                settings.rate_profile == "shared").to(rt.device, rt.dtype)

    # --- what the base class saves and restores --------------------------------------------------------
    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.agents.module, "market": self.market}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opts

    def _extra_state(self) -> State:
        state: State = {}
        if self._cache_noise is not None:
            state["market_cache_noise"] = self._cache_noise.copy()
        if self._cache_sigma is not None:
            state["market_cache_sigma"] = self._cache_sigma.copy()
        return state

    def _load_extra_state(self, state: State) -> None:
        noise, sigma = state.get("market_cache_noise"), state.get("market_cache_sigma")
        self._cache_noise = None if noise is None else np.asarray(noise, dtype=np.uint8)
        self._cache_sigma = None if sigma is None else np.asarray(sigma)
        self._cache = None

    # --- results -------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, brownian: Brownian) -> Paths:
        times = self.model.times
        return simulate(
            self.model, brownian,
            rates=self.agents.rates(),
            sigma=lambda D, W: self.market.sigma(times),
            mu=lambda D, W, phi, sigma: self._market_paths(phi, W)[0],
            s0=self.market.s0,
        )

    def load_weights(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        """Restore the networks from :meth:`weights` (e.g. read back from a result file)."""
        as_tensors = lambda params: {key: torch.as_tensor(value) for key, value in params.items()}  # noqa: E731
        self.market.load_state_dict(as_tensors(weights["market"]))
        self.agents.load_weights(as_tensors(weights["policy"]))


class AgentsPhase(Protocol):
    """Who trains the agents: the solver asks it for one round's agents' phase and for its rates."""

    def train(self, round_index: int, plan: RoundPlan) -> None:
        """Train the agents against the frozen market for one round, through the solver's ``_iterate``."""

    def rates(self) -> RatesFn:
        """The agents' current deterministic rates ``(k, D, W) -> (B, N)`` for roll-outs."""

    @property
    def module(self) -> torch.nn.Module:
        """The network whose rates the market sees: saved in checkpoints and results as ``policy``."""

    def load_weights(self, weights: dict[str, Tensor]) -> None: ...


class PathwiseAgents:
    """The solver's own policy network, trained by gradients through the roll-out (``_agents_step``)."""

    def __init__(self, solver: ReinforcementLinkSolver) -> None:
        self.solver = solver

    def train(self, round_index: int, plan: RoundPlan) -> None:
        s = self.solver
        optimizer = torch.optim.Adam(s.policy.parameters(), lr=plan.agents_lr)
        s._opts = {"agents": optimizer}
        s._iterate(round_index, "agents", plan.agents_iterations,
                   lambda i, opt=optimizer, w=plan.clearing_weight: s._agents_step(opt, w))

    def rates(self) -> RatesFn:
        policy, times = self.solver.policy, self.solver.model.times
        gains = policy.grid_gains(times)
        return lambda k, D, W: policy(times[k], D, W, gains[k])

    @property
    def module(self) -> torch.nn.Module:
        return self.solver.policy

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        self.solver.policy.load_state_dict(weights)
