"""Solved markets as an RL agent meets them: an oracle, or a finished run rebuilt from its weights.

Why rebuild the run's networks rather than replay the mu and sigma recorded in its file: the file holds
the processes on the fixed test set only, which an agent would overfit and which is needed untouched to
evaluate it; the rebuilt equilibrium gives the same processes on any number of fresh paths.

What "the market" is for one deviating agent: the equilibrium's processes (mu_t, sigma_t) along the path,
computed with every agent, the deviant included, holding its equilibrium position. A price-taking agent
does not move mu: evaluating the market's mu(t, D, W) at the deviant's own holdings would hand it a price
impact the model rules out (and query the market network off the states it was fitted on).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths
from marketeq.oracles import ORACLES, oracle_for
from marketeq.results import RunResult
from marketeq.rl.simulator import Processes
from marketeq.runtime import Runtime
from marketeq.scenario import Scenario
from marketeq.scenario_files import load_scenario
from marketeq.solvers.networks import Scales

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.toml"


class MarketError(ValueError):
    """A market an agent cannot trade in; ``str()`` is one line saying what to fix."""


@dataclass(frozen=True)
class SolvedMarket:
    """An equilibrium: ``paths(brownian)`` gives mu, sigma and every agent's holdings along the increments."""

    name: str
    scenario: Scenario
    model: MarketModel
    paths: Callable[[Brownian], Paths]

    def processes(self, agent: int, market_state: bool = False) -> Callable[[Brownian], Processes]:
        """The processes agent ``agent`` faces; with ``market_state``, mu, sigma and every agent's
        equilibrium deviation (in natural units) join its observation."""
        scales = Scales(self.model)
        alpha, mu_bar = self.model.alpha, self.model.frictionless_mu

        def along(brownian: Brownian) -> Processes:
            eq = self.paths(brownian)
            state = None
            if market_state:
                deviation = (eq.phi - self.model.phibar) / scales.deviation
                state = torch.cat([((eq.mu - mu_bar) / scales.mu).unsqueeze(-1),
                                   (eq.sigma / alpha - 1.0).unsqueeze(-1), deviation], dim=-1)
            return Processes(eq.mu, eq.sigma, state)

        return along

    def state_size(self, market_state: bool) -> int:
        return 2 + self.model.n_agents if market_state else 0


def oracle_market(scenario: Scenario, oracle: str | None = None) -> SolvedMarket:
    """The scenario's equilibrium by an oracle: ``oracle`` names one of ORACLES, None the exact one."""
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    if oracle is None:
        found = oracle_for(model)
        if found is None:
            raise MarketError(f"{scenario.name}: no exact oracle for q = {scenario.frictions.q} with "
                              "lambda > 0; give a solved result file instead")
    elif oracle not in ORACLES:
        raise MarketError(f"oracle = {oracle!r}: use one of {', '.join(ORACLES)}")
    else:
        try:
            found = ORACLES[oracle](model)
        except ValueError as exc:
            raise MarketError(f"oracle = {oracle!r}: {exc}") from None
    return SolvedMarket(f"oracle:{found.name}", scenario, model, found.paths)


def run_market(result: RunResult) -> SolvedMarket:
    """The equilibrium of a finished run, its networks rebuilt from the stored weights (float64, CPU)."""
    if result.solver.startswith("oracle:"):
        return oracle_market(result.scenario, result.solver.removeprefix("oracle:"))
    from marketeq.api import SOLVERS

    if result.solver not in SOLVERS or not result.weights:
        raise MarketError(f"result of solver {result.solver!r} without weights: cannot rebuild its market")
    solver = SOLVERS[result.solver](result.scenario, Runtime(torch.device("cpu"), torch.float64,
                                                             result.scenario.run.seed))
    try:
        solver.load_weights(result.weights)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise MarketError(f"the stored weights do not fit the scenario's networks ({exc})") from None
    return SolvedMarket(f"run:{result.solver}", result.scenario, solver.model, solver.evaluate)


def as_market(source: SolvedMarket | RunResult | Scenario | str | os.PathLike[str] | None) -> SolvedMarket:
    """A market from a SolvedMarket, a RunResult, a Scenario (its oracle), or a path to a result (.h5)
    or scenario (.toml) file; None is the quickstart scenario's oracle."""
    if isinstance(source, SolvedMarket):
        return source
    if isinstance(source, RunResult):
        return run_market(source)
    if isinstance(source, Scenario):
        return oracle_market(source)
    path = Path(DEFAULT_SCENARIO if source is None else source)
    if path.suffix == ".toml":
        return oracle_market(load_scenario(path))
    from marketeq.hdf5 import read_result

    return run_market(read_result(path))
