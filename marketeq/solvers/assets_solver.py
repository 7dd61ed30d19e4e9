"""The default solver for several assets with quadratic costs: each time grid's equilibrium exactly
(:mod:`marketeq.solvers.quadratic_assets`), on grids K, 2K, 4K, ..., extrapolated to a vanishing time step
(Richardson, ``2 x fine - coarse``) until the extrapolation's estimated error is within ``GRID_TOLERANCE``:
the one-asset adaptive schedule of :mod:`marketeq.solvers.adaptive` with exact agents, for d assets.

It is not a :class:`~marketeq.solvers.base.Solver`: there is nothing to train, checkpoint or roll back (a grid
is one backward pass, seconds on the finest), so it reports a grid per event and stops between grids.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from marketeq.oracles.assets_market import AssetsMarket, cost_matrix
from marketeq.scenario import Scenario
from marketeq.scenario.assets import asset_arrays, refuse_unsolved_assets
from marketeq.solvers.adaptive import GRID_TOLERANCE, LINEAR_LEVELS, MIN_LEVELS
from marketeq.solvers.events import (
    CallbackList,
    IterationEnded,
    PhaseEnded,
    PhaseStarted,
    RunControl,
    RunEnded,
    RunStarted,
)
from marketeq.solvers.quadratic_assets import (
    AssetsEquilibrium,
    AssetsProblem,
    best_response,
    equilibrium_sweep,
    market_of,
    roll_out,
)

__all__ = ["AssetsQuadraticSolver"]


def _every(eq: AssetsEquilibrium, every: int) -> AssetsEquilibrium:
    """A grid's equilibrium at every ``every``-th point: at the points of the scenario's grid."""
    return AssetsEquilibrium(eq.sigma[::every], eq.A[::every], eq.a[::every], eq.b[::every], eq.s0)


def _relative_sup(x: np.ndarray, reference: np.ndarray) -> float:
    """sup over t of the largest entry of ``|x_t - reference_t|`` over the largest of ``|reference_t|``."""
    scale = np.abs(reference).max(axis=(-2, -1))
    return float((np.abs(x - reference).max(axis=(-2, -1)) / scale).max())


class AssetsQuadraticSolver:
    """Exact grid equilibria of a d-asset market with ``G(x) = x' Lambda x / 2``, refined and extrapolated."""

    name = "rlink"

    def __init__(self, scenario: Scenario) -> None:
        refuse_unsolved_assets(scenario)
        self.scenario = scenario
        arrays = asset_arrays(scenario)
        self.market = AssetsMarket.check(arrays.gamma, arrays.xi, arrays.A, arrays.supply, arrays.beta,
                                         arrays.horizon, arrays.steps)
        self.lam = cost_matrix(arrays.lam, self.market.n_assets)
        # each grid's equilibrium at the scenario's grid points, all the answer uses: the full tables of the
        # finest grids would take (K+1) (N d)^2 numbers each
        self.grids: list[AssetsEquilibrium] = []
        self.finest_sigma: np.ndarray | None = None
        self.grid_errors: list[float] = []  # the estimated error after each refinement
        self.residual = float("nan")  # the fixed-point residual of the finest grid's equilibrium
        self.verdict = ""
        self.elapsed_s = 0.0

    def _market(self, level: int) -> AssetsMarket:
        return dataclasses.replace(self.market, steps=self.market.steps * 2**level)

    def run(self, callbacks: CallbackList | None = None,
            control: RunControl | None = None) -> tuple[str, str]:
        """Solve grid after grid until the time-step error is within tolerance or the budget is spent; the
        status ("completed" or "interrupted") and the verdict."""
        events, control = callbacks or CallbackList(), control or RunControl()
        s, started = self.scenario, time.perf_counter()
        events.on_event(RunStarted(s.name, self.name, LINEAR_LEVELS, LINEAR_LEVELS, s.n_agents,
                                   tuple(s.agent_names)))
        status = "completed"
        for level in range(LINEAR_LEVELS):
            if self.grids and control.poll():
                status = "interrupted"
                break
            market = self._market(level)
            events.on_event(PhaseStarted(level, "joint", 1))
            problem = AssetsProblem(market, self.lam)
            equilibrium = equilibrium_sweep(problem)
            self.finest_sigma = equilibrium.sigma
            self.grids.append(_every(equilibrium, 2**level))
            if level:
                self.grid_errors.append(self._grid_error())
            self.elapsed_s = time.perf_counter() - started
            losses = {"grid/steps": float(market.steps)}
            if self.grid_errors:
                losses["grid/time_step_error"] = self.grid_errors[-1]
            events.on_event(IterationEnded(level, "joint", 0, level, losses, self.elapsed_s))
            events.on_event(PhaseEnded(level, "joint", losses))
            if len(self.grids) >= MIN_LEVELS and self.grid_errors[-1] <= GRID_TOLERANCE:
                break
            if self.elapsed_s > s.solver.max_minutes * 60.0:
                break
        self.residual = self._fixed_point_residual()
        self.elapsed_s = time.perf_counter() - started
        self.verdict = self._describe(status)
        events.on_event(RunEnded(status, len(self.grids), self.verdict))  # type: ignore[arg-type]
        return status, self.verdict

    def _fixed_point_residual(self) -> float:
        """How far the market that the agents' best response to the finest grid's volatility implies is from
        that volatility: rounding for an exact sweep, the check that it is one."""
        assert self.finest_sigma is not None
        problem = AssetsProblem(self._market(len(self.grids) - 1), self.lam)
        sigma, _ = market_of(problem, *best_response(problem, self.finest_sigma))
        return _relative_sup(sigma[1:], self.finest_sigma[1:])

    def answer(self, n: int | None = None) -> AssetsEquilibrium:
        """The answer from the first ``n`` grids (all solved by default), on the scenario's grid: the
        first-order extrapolation from the two finest of them, as the one-asset schedule."""
        n = len(self.grids) if n is None else n
        if n == 1:
            return self.grids[0]
        fine, coarse = self.grids[n - 1], self.grids[n - 2]
        return AssetsEquilibrium(*(2.0 * getattr(fine, f.name) - getattr(coarse, f.name)
                                   for f in dataclasses.fields(AssetsEquilibrium)))

    def _grid_error(self) -> float:
        """The extrapolation's estimated relative error, as the one-asset schedule's: with two grids their
        difference, with three or more a third of the change between the last two extrapolations."""
        n = len(self.grids)
        if n == 2:
            fine, base = self.grids[1].sigma, self.grids[0].sigma
            return _relative_sup(base[1:], fine[1:])
        return _relative_sup(self.answer(n - 1).sigma[1:], self.answer(n).sigma[1:]) / 3.0

    def _describe(self, status: str) -> str:
        grids = "/".join(str(self.market.steps * 2**i) for i in range(len(self.grids)))
        error = (f"time-step error {self.grid_errors[-1]:.2g}" if self.grid_errors
                 else "time-step error unknown")
        tail = f"fixed-point residual {self.residual:.2g}, {self.elapsed_s:.1f} s"
        if status == "interrupted":
            return f"stopped after grids of {grids} steps ({error}; {tail})"
        if self.grid_errors and self.grid_errors[-1] <= GRID_TOLERANCE:
            return f"converged on grids of {grids} steps ({error}, tolerance {GRID_TOLERANCE:g}; {tail})"
        if len(self.grids) < LINEAR_LEVELS:
            return (f"budget_exhausted after {self.elapsed_s:.0f} s: max_minutes spent on grids of {grids} "
                    f"steps, {error} ({tail})")
        return (f"unresolved: {error} is above {GRID_TOLERANCE:g} after grids of {grids} steps; raise "
                f"market.steps ({tail})")

    def convergence(self) -> dict[str, float]:
        """The verdict as metrics ``convergence/*``, named as the one-asset schedule's."""
        out = {"convergence/converged": float(self.verdict.startswith("converged")),
               "convergence/rounds": float(len(self.grids)), "convergence/grids": float(len(self.grids)),
               "convergence/sigma_change": self.residual}
        if self.grid_errors:
            out["convergence/time_step_error"] = self.grid_errors[-1]
        return out

    def evaluate(self, dW: np.ndarray) -> dict[str, np.ndarray]:
        """The answer along increments ``dW`` (B, K, d) on the scenario's grid: a result's paths' fields."""
        return roll_out(self.market, self.answer(), dW)
