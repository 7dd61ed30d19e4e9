"""Agent learners of the reinforcement-link loop other than its own pathwise one, looked up by name.

A learner is registered as a ``"module:Class"`` string and imported only when a scenario asks for it, so
the solvers never import :mod:`marketeq.rl` (which builds on them) and stable-baselines3 loads only on demand.
The learner gets a :class:`SolverView`: the few things of the solver it may see and do, never the solver.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from marketeq.model.market import MarketModel
from marketeq.runtime import Runtime
from marketeq.scenario import Scenario

__all__ = ["AGENT_LEARNERS", "SolverView", "load_learner"]

# family (the part of ``solver.agent_learner`` before ":") -> "module:Class", called as Class(view, algo)
AGENT_LEARNERS: dict[str, str] = {"sb3": "marketeq.rl.agents_phase:SB3Agents"}

# iterate(round_index, phase, iterations, step): run the solver's iteration loop (events, pause/stop, NaN
# guard, snapshots, checkpoints) around ``step(i) -> losses``.
IterateFn = Callable[[int, Any, int, Callable[[int], dict[str, Tensor]]], None]


@dataclass(frozen=True)
class SolverView:
    """What an agent learner sees of the reinforcement-link solver."""

    model: MarketModel
    scenario: Scenario
    runtime: Runtime
    agent_weights: Tensor  # (N,) weights of the agents' utilities in the generator's loss
    market_paths: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (phi, W) -> (mu, sigma) of the market
    iterate: IterateFn


def load_learner(family: str) -> type:
    """The learner class registered for ``family``.

    Raises:
        KeyError: no learner is registered under that name.
        ImportError: its module (or a library it needs) cannot be imported.
    """
    module, _, name = AGENT_LEARNERS[family].partition(":")
    return getattr(importlib.import_module(module), name)
