"""The reinforcement-link solver with its adaptive schedule: rounds of the agents' problem solved to
optimality against a frozen volatility, the market solved exactly on their roll-out, the volatility mixed
across rounds, until the round-to-round changes and the equilibrium residuals on held-out paths fall below
``solver.tolerance`` or the budget (``max_rounds``, ``max_minutes``) is spent. The same is then done on time
grids two and four times finer (warm-started, on the same paths refined by a Brownian bridge), and the answer
is extrapolated to a vanishing time step from the two finest grids (Richardson), until the estimated error of
the extrapolation is within ``GRID_TOLERANCE``.

With quadratic costs the agents' best response and the rounds' fixed point on a grid are exact
(:mod:`marketeq.solvers.quadratic`): one round per grid, and grids cheap enough to refine further.
The reasons for each piece, and what they measured, are in :mod:`marketeq.solvers.fixed_point`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import Tensor, nn

from marketeq.model.brownian import Brownian, BrownianSource, moment_matched, refine, stream_seed
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, price_path, roll_holdings, simulate
from marketeq.runtime import Runtime, torch_threads
from marketeq.scenario import Scenario
from marketeq.solvers.agents_stop import agents_tolerance
from marketeq.solvers.base import Solver
from marketeq.solvers.fixed_point import (
    FIELDS,
    AndersonMixer,
    RoundCheck,
    expected_s0,
    interval_sigma,
    volatility_pass,
    welfare,
)
from marketeq.solvers.implied import implied_mu
from marketeq.solvers.levels import Level
from marketeq.solvers.losses import StateProjection, clearing_error, implied_rates, terminal_error
from marketeq.solvers.moments import identity_moments
from marketeq.solvers.pathwise import pathwise_volatility
from marketeq.solvers.pathwise_link import link_volatility, policy_jacobians
from marketeq.solvers.quadratic import equilibrium_sweep
from marketeq.solvers.state import State, to_numpy

LBFGS_CHUNK = 25  # objective evaluations per agents' iteration (a fresh L-BFGS each, so resumes are exact)
MAX_CHUNKS = 40  # agents' iterations per round at most
AGENTS_RTOL = 1e-8  # an agents' phase ends when an iteration improves the objective by less than this share
MARKET_SWEEPS = 30  # return <-> volatility sweeps of the exact market solve, at most
VALIDATION_PATHS = 1024
SIGMA_FLOOR = 1e-3  # in units of alpha: a volatility is positive
MIN_LEVELS = 2  # time grids K, 2K, ...: two give an estimate of the time-step error
MAX_LEVELS = 3  # trained agents: K, 2K, 4K
LINEAR_LEVELS = 6  # exact agents (quadratic costs): up to 32K, each grid's equilibrium in O(K N^3)
GRID_TOLERANCE = 2e-3  # the extrapolated volatility's estimated relative error that ends the refinement
# The check's regression of the marginal benefit on the state has 3N + 4 features: with exact agents it is
# fitted only while they are at most half the held-out paths (N <= 169). Above, it would be underdetermined,
# and its (K, 1024, 3N + 4) tensors take gigabytes (4 GB at N = 300).
FOC_MAX_FEATURES = VALIDATION_PATHS // 2


class AdaptiveLinkSolver(Solver):
    """Self-converging reinforcement link: agents' optimum, exact market, Anderson-mixed volatility, on
    successively finer time grids extrapolated to a vanishing step."""

    name = "rlink"

    def __init__(self, scenario: Scenario, runtime: Runtime) -> None:
        super().__init__(scenario, runtime)
        m, settings = self.model, scenario.solver
        linear = m.cost.q == 2.0
        n_levels = LINEAR_LEVELS if linear else MAX_LEVELS
        train: Brownian | None = None
        if not linear:  # exact agents need no training paths
            # Fixed paths make the agents' objective a fixed function (L-BFGS needs one) and the round map
            # smooth. Matching the increments' moments needs at least as many paths as steps on the finest grid.
            source = BrownianSource(stream_seed(runtime.seed, "train"), m.n_steps, m.dt, runtime.device,
                                    runtime.dtype)
            train = source.draw(max(2 * settings.batch_size, m.n_steps * 2 ** (n_levels - 1) + 16))
        valid = BrownianSource(stream_seed(runtime.seed, "valid"), m.n_steps, m.dt, runtime.device,
                               runtime.dtype).draw(VALIDATION_PATHS)
        self.levels = [Level(m, _matched(train, m.dt), valid, settings.agents_hidden)]
        for level in range(1, n_levels):
            coarse = self.levels[-1].model
            fine = dataclasses.replace(coarse, n_steps=2 * coarse.n_steps)
            if train is not None:
                train = refine(train, coarse.dt, stream_seed(runtime.seed, "train") + level)
            valid = refine(valid, coarse.dt, stream_seed(runtime.seed, "valid") + level)
            self.levels.append(Level(fine, _matched(train, fine.dt), valid, settings.agents_hidden))
        self.reached = 1  # levels solved or being solved
        self.grid_errors: list[float] = []  # the estimated error after each refinement
        self.identity = scenario.solver.mu_source == "known" or m.cost.q == 2.0 or (
            m.n_agents == 2 and m.cost.common_lam is not None)
        self.verdict = ""

    # --- the agents ------------------------------------------------------------------------------------
    def _objective(self, level: Level) -> Tensor:
        m, b = level.model, level.train
        phi, phidot = roll_holdings(m, b.W, level.rates())
        return -welfare(m, level.market.sigma, phi, phidot, b.W).mean() / (m.n_agents * m.horizon)

    def _agents_step(self, level: Level) -> dict[str, Tensor]:
        if level.linear:
            return self._exact_step(level)
        params = list(level.policy.parameters())
        optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=LBFGS_CHUNK, history_size=LBFGS_CHUNK,
                                      tolerance_grad=1e-12, tolerance_change=1e-14,
                                      line_search_fn="strong_wolfe")
        start = [p.detach().clone() for p in params]

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = self._objective(level)
            loss.backward()
            return loss

        before = float(optimizer.step(closure).detach())  # L-BFGS returns the objective at its starting point
        with torch.no_grad():
            after = self._objective(level)
            if not bool(torch.isfinite(after)) or float(after) > before:
                # A line search that left the concave problem's basin (seen as NaN on a two-agent scenario):
                # keep the last good policy and end the phase there.
                for param, value in zip(params, start, strict=True):
                    param.copy_(value)
                after = torch.tensor(before, dtype=after.dtype)
        improvement = (before - float(after)) / max(abs(before), 1e-30)
        done = improvement < agents_tolerance(level.checks, AGENTS_RTOL)
        return {"agents/loss": after, "agents/improvement": torch.tensor(improvement),
                "phase/done": torch.tensor(float(done))}

    def _exact_step(self, level: Level) -> dict[str, Tensor]:
        """Quadratic costs: the grid's equilibrium at once, the agents' feedback and the market with it."""
        m = level.model
        equilibrium = equilibrium_sweep(m)
        level.policy.set(equilibrium.A, equilibrium.a, equilibrium.b)
        level.market.sigma.copy_(equilibrium.sigma.clamp_min(SIGMA_FLOOR * m.alpha).to(level.market.sigma.dtype))
        level.market.s0.copy_(equilibrium.s0.to(level.market.s0.dtype))
        return {"agents/loss": torch.tensor(0.0), "agents/improvement": torch.tensor(0.0),
                "phase/done": torch.tensor(1.0)}

    # --- the market ------------------------------------------------------------------------------------
    def link_mu(self, model: MarketModel, sigma: Tensor, phi: Tensor, W: Tensor) -> Tensor:
        """(B, K+1) the return at which the agents' implied rates clear (the reinforcement link)."""
        sigma_paths = sigma.expand(W.shape)
        if self.identity:
            return model.return_identity(sigma_paths, phi, W)
        return implied_mu(model, sigma_paths, phi, W, self._projection(model, phi, W))

    def _projection(self, model: MarketModel, phi: Tensor, W: Tensor) -> StateProjection:
        return StateProjection.along(model, self.levels[0].scales, phi, W)

    @torch.no_grad()
    def _market_step(self, level: Level) -> dict[str, Tensor]:
        m, b = level.model, level.train
        if level.linear:  # the exact market of the agents' feedback: its residual checks the sweep
            A_mean, slopes = identity_moments(m, *level.policy.on(m.times), m.dt)
            sigma = volatility_pass(m, slopes).clamp_min(SIGMA_FLOOR * m.alpha)
            s0 = expected_s0(m, sigma, A_mean)
        elif self.identity:
            rates = level.rates()
            phi, _ = roll_holdings(m, b.W, rates)
            sigma, s0 = pathwise_volatility(m, rates, phi, b.W, b.dW)
            sigma = sigma.clamp_min(SIGMA_FLOOR * m.alpha)
        else:
            phi, _ = roll_holdings(m, b.W, level.rates())
            sigma, s0 = self._iterate_volatility(level, phi)
        old = level.market.sigma.double().clone()  # .double() of a float64 buffer is the buffer itself
        # The fixed-point residual: how far the market the agents' optimum implies is from the one they faced.
        residual = float(((sigma - old).abs() / old.abs())[1:].max())
        new = level.mixer.update(old, sigma).clamp_min(SIGMA_FLOOR * m.alpha)
        level.market.sigma.copy_(new.to(level.market.sigma.dtype))
        level.market.s0.copy_(s0.to(level.market.s0.dtype))
        check = self._check(level, residual)
        level.checks.append(check)
        logs = {f"market/{key}": torch.tensor(value) for key, value in check.as_dict().items()
                if math.isfinite(value)}  # foc is NaN where it was not computed
        logs["market/residual"] = torch.tensor(residual)
        return logs

    def _iterate_volatility(self, level: Level, phi: Tensor) -> tuple[Tensor, Tensor]:
        """The market by sweeps of ``sigma -> link mu -> fit``, for a link that is not the return identity;
        the fit from the return's path-wise sensitivities (:mod:`marketeq.solvers.pathwise_link`)."""
        m, b = level.model, level.train
        sigma = level.market.sigma.double()
        inner = AndersonMixer(positive=True)
        s0 = level.market.s0.double()
        projection = self._projection(m, phi, b.W)
        jacobians = policy_jacobians(m, level.rates(), phi, b.W)
        for _ in range(MARKET_SWEEPS):
            fitted, s0 = link_volatility(m, sigma, phi, b.W, b.dW, projection, level.scales, jacobians)
            change = float((fitted - sigma).abs().max())
            sigma = inner.update(sigma, fitted).clamp_min(SIGMA_FLOOR * m.alpha)
            if change < 1e-10 * m.alpha:
                break
        return sigma, s0

    @torch.no_grad()
    def _check(self, level: Level, residual: float) -> RoundCheck:
        """The round's residuals on the level's held-out paths; ``sigma_change`` is the larger of the
        volatility's fixed-point residual and its change since the last round. ``foc`` (reported, not used for
        stopping) is NaN, and left out of the logs and metrics, for exact agents above ``FOC_MAX_FEATURES``:
        it is not computed for more than 169 agents."""
        m, b = level.model, level.valid
        paths = self._paths(b, [(1.0, level)], m)
        sigma = paths.sigma[0].double().cpu().numpy()
        mu_mean = paths.mu.mean(0).double().cpu().numpy()
        if level.linear:  # an exact grid equilibrium: no round before it; its residual is the measure
            level.last_valid = (sigma, mu_mean)
        elif level.last_valid is None:  # the first round is measured against the frictionless start
            level.last_valid = (np.full_like(sigma, m.alpha), np.full_like(mu_mean, m.frictionless_mu))
        old_sigma, old_mu = level.last_valid
        sigma_change = max(float(np.max(np.abs(sigma - old_sigma) / np.abs(old_sigma))), residual)
        mu_scale = max(float(np.abs(old_mu).max()), m.frictionless_mu, 1e-12)
        mu_change = float(np.max(np.abs(mu_mean - old_mu)) / mu_scale)
        level.last_valid = (sigma, mu_mean)
        terminal = float(terminal_error(m, paths.S, paths.W).mean()) / (m.alpha**2 * m.horizon)
        regress = not level.linear or 3 * m.n_agents + 4 <= FOC_MAX_FEATURES
        # Without the regression the link is path-wise: with exact agents the return identity makes the mean
        # implied rate vanish on every path, so either way it measures rounding.
        projection = self._projection(m, paths.phi, paths.W) if regress else None
        implied = implied_rates(m, paths.mu, paths.sigma, paths.phi, paths.W, projection)[:, :-1]
        rates = paths.phidot[:, :-1]
        size = rates.pow(2).mean().clamp_min(1e-30)
        foc = float((rates - implied).pow(2).mean() / size) if regress else math.nan
        link = float(implied.mean(-1).pow(2).mean() / size)
        return RoundCheck(sigma_change, mu_change, terminal, link, float(clearing_error(paths.phidot).mean()),
                          foc)

    def planned(self) -> tuple[int, int]:
        rounds = self._rounds_per_grid() * len(self.levels)
        return rounds, rounds * (2 if self.levels[0].linear else MAX_CHUNKS + 1)

    def _rounds_per_grid(self) -> int:
        # an exact grid equilibrium is not improved by another round
        return 1 if self.levels[0].linear else self.scenario.solver.max_rounds

    # --- the schedule ----------------------------------------------------------------------------------
    def _solve_level(self, index: int) -> bool | None:
        """Rounds on one grid until the stopping rule holds (True), the budget is spent (False), or, when a
        resumed state lies beyond this grid, None."""
        level, settings = self.levels[index], self.scenario.solver
        per_grid = self._rounds_per_grid()
        rounds_before = per_grid * index
        ran = False
        for r in range(per_grid):
            self._iterate(rounds_before + r, "agents", MAX_CHUNKS, lambda i: self._agents_step(level))
            if not self._iterate(rounds_before + r, "market", 1, lambda i: self._market_step(level)):
                continue  # a round that a resumed state had finished
            ran = True
            if level.checks[-1].worst(settings.tolerance)[1] <= 1.0:
                return True
            if self.elapsed_s > settings.max_minutes * 60.0:
                return False
        return False if ran else None

    def _train(self) -> None:
        # Every operation here is on small tensors (a few thousand numbers): one thread is fastest.
        with torch_threads(1):
            self._train_levels()

    def _train_levels(self) -> None:
        for index, level in enumerate(self.levels):
            self.reached = index + 1
            if index:
                level.warm_start(self.levels[index - 1])
            outcome = self._solve_level(index)
            if outcome is None:
                continue  # finished before the state this run resumed from
            if index:
                self.grid_errors.append(self._grid_error())
            if not outcome:
                self.verdict = self._describe("budget_exhausted")
                return
            if self.reached >= MIN_LEVELS and self.grid_errors[-1] <= GRID_TOLERANCE:
                break
            if self.elapsed_s > self.scenario.solver.max_minutes * 60.0:
                self.verdict = self._describe("budget_exhausted")
                return
        resolved = bool(self.grid_errors) and self.grid_errors[-1] <= GRID_TOLERANCE
        self.verdict = self._describe("converged" if resolved else "unresolved")

    def _grid_error(self) -> float:
        """The estimated relative error of the answer (the extrapolation from the two finest grids). With two
        grids, their relative difference: about the error of the finer grid's own answer, an upper estimate of
        what extrapolation leaves (measured on quadratic scenarios: 0.1-0.6 of it). With three, a third of the
        change between the extrapolations from the coarser and the finer pair (the standard estimate of the
        second-order remainder)."""
        n = self.reached
        coarse = self.model.n_steps  # the scenario's grid, the coarsest
        if n == 2:
            fine, base = (self.levels[i].sigma_on(coarse).double() for i in (1, 0))
            return float(((fine - base).abs() / fine.abs()).max())
        new, old = self._extrapolated_sigma(n), self._extrapolated_sigma(n - 1)
        return float(((new - old).abs() / new.abs()).max()) / 3.0

    def _combination(self, n: int) -> list[tuple[float, Level]]:
        """The answer from the first ``n`` grids: first-order extrapolation from the two finest of them (a
        higher-order one from three amplified the grids' residual noise: weights 1/3, -2, 8/3 against -1, 2)."""
        if n == 1:
            return [(1.0, self.levels[0])]
        return [(-1.0, self.levels[n - 2]), (2.0, self.levels[n - 1])]

    def _extrapolated_sigma(self, n: int) -> Tensor:
        coarse = self.model.n_steps  # the scenario's grid, the coarsest
        return sum(w * level.sigma_on(coarse).double() for w, level in self._combination(n))

    def _describe(self, verdict: str) -> str:
        tol = self.scenario.solver.tolerance
        level = self.levels[self.reached - 1]
        rounds = sum(len(lv.checks) for lv in self.levels)
        check = level.checks[-1]
        values = ", ".join(f"{key} {value:.2g}" for key, value in check.as_dict().items()
                           if math.isfinite(value))
        grids = "/".join(str(lv.model.n_steps) for lv in self.levels[: self.reached])
        grid = f"time-step error {self.grid_errors[-1]:.2g}" if self.grid_errors else "time-step error unknown"
        if verdict == "converged":
            return (f"converged in {rounds} rounds on grids of {grids} steps (tolerance {tol:g}; {grid}; "
                    f"{values})")
        if verdict == "unresolved":
            return (f"unresolved: {grid} is above {GRID_TOLERANCE:g} after grids of {grids} steps; raise "
                    f"market.steps ({values})")
        name, ratio = check.worst(tol)
        if ratio <= 1.0:  # the rounds had stopped: the time ran out before the time step was resolved
            return (f"budget_exhausted after {rounds} rounds, {self.elapsed_s:.0f} s: max_minutes spent on grids "
                    f"of {grids} steps, {grid} ({values})")
        return (f"budget_exhausted after {rounds} rounds, {self.elapsed_s:.0f} s: {name} is {ratio:.3g} times "
                f"its tolerance ({values})")

    def convergence(self) -> dict[str, float]:
        """The verdict and the last round's measures, as metrics ``convergence/*``."""
        out = {"convergence/converged": float(self.verdict.startswith("converged")),
               "convergence/rounds": float(sum(len(lv.checks) for lv in self.levels)),
               "convergence/grids": float(self.reached)}
        if self.grid_errors:
            out["convergence/time_step_error"] = self.grid_errors[-1]
        checks = self.levels[self.reached - 1].checks
        if checks:
            out.update({f"convergence/{key}": value for key, value in checks[-1].as_dict().items()
                        if math.isfinite(value)})
        return out

    # --- saved state -----------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {}
        for i, level in enumerate(self.levels):
            suffix = f"_{i}" if i else ""
            modules[f"policy{suffix}"], modules[f"market{suffix}"] = level.policy, level.market
        return modules

    def _extra_state(self) -> State:
        state: State = {"reached": np.array(self.reached), "grid_errors": np.array(self.grid_errors)}
        for i, level in enumerate(self.levels):
            state[f"mixer_{i}"] = {k: to_numpy(v) for k, v in level.mixer.state().items()}
            state[f"checks_{i}"] = np.array([list(c.as_dict().values()) for c in level.checks]).reshape(
                -1, len(FIELDS))
            if level.last_valid is not None:
                state[f"last_sigma_{i}"], state[f"last_mu_{i}"] = level.last_valid
        return state

    def _load_extra_state(self, state: State) -> None:
        self.reached = int(np.asarray(state.get("reached", 1)))
        self.grid_errors = [float(x) for x in np.asarray(state.get("grid_errors", [])).reshape(-1)]
        for i, level in enumerate(self.levels):
            mixer = state.get(f"mixer_{i}", {})
            level.mixer.load({k: torch.as_tensor(np.asarray(v)) for k, v in mixer.items()})
            rows = np.asarray(state.get(f"checks_{i}", np.zeros((0, len(FIELDS))))).reshape(-1, len(FIELDS))
            level.checks = [RoundCheck(*map(float, row)) for row in rows]
            last = state.get(f"last_sigma_{i}")
            level.last_valid = None if last is None else (np.asarray(last), np.asarray(state[f"last_mu_{i}"]))

    # --- results ---------------------------------------------------------------------------------------
    def _paths(self, brownian: Brownian, combination: list[tuple[float, Level]], model: MarketModel) -> Paths:
        """Paths on ``model``'s grid of the weighted combination of the levels' policies and markets."""
        rates_fns = [(w, level.rates(model.times)) for w, level in combination]
        sigma = sum(w * level.sigma_on(model.n_steps) for w, level in combination)
        sigma = sigma.clamp_min(SIGMA_FLOOR * model.alpha)
        s0 = sum(w * level.market.s0 for w, level in combination)

        def rates(k: int, D: Tensor, W: Tensor) -> Tensor:
            return sum(w * fn(k, D, W) for w, fn in rates_fns)

        paths = simulate(model, brownian, rates=rates, sigma=lambda D, W: sigma,
                         mu=lambda D, W, phi, s: self.link_mu(model, sigma, phi, W), s0=s0)
        paths.S = price_path(model, paths.mu, interval_sigma(paths.sigma), brownian.dW, s0)
        return paths

    @torch.no_grad()
    def evaluate(self, brownian: Brownian) -> Paths:
        """The answer on the scenario's grid: the solved grids extrapolated to a vanishing time step."""
        return self._paths(brownian, self._combination(self.reached), self.model)


def _matched(paths: Brownian | None, dt: float) -> Brownian | None:
    return None if paths is None else moment_matched(paths, dt)
