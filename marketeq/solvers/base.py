"""What every solver shares: the market model, seeded noise, events, control polling and the NaN guard."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from marketeq.model.brownian import Brownian, BrownianSource, brownian_test_set, stream_seed
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths
from marketeq.oracles import reference_for
from marketeq.runtime import Runtime
from marketeq.scenario import Scenario
from marketeq.solvers.events import (
    Callback,
    CallbackList,
    IterationEnded,
    Phase,
    PhaseEnded,
    PhaseStarted,
    RunControl,
    RunEnded,
    RunStarted,
    Snapshot,
    Status,
)
from marketeq.solvers.losses import clearing_error, terminal_error

SNAPSHOT_PATHS = 256


class Interrupted(Exception):
    """The run was asked to stop."""


class Diverged(Exception):
    """A loss became non-finite."""


@dataclass(frozen=True)
class RunOutcome:
    status: Status
    step: int
    message: str = ""


class Solver(ABC):
    """A solver trains on seeded noise, reports through events and is evaluated on given paths."""

    name = "solver"

    def __init__(self, scenario: Scenario, runtime: Runtime) -> None:
        self.scenario, self.runtime = scenario, runtime
        self.model = MarketModel.from_scenario(scenario, runtime.device, runtime.dtype)
        m = self.model
        self.noise = BrownianSource(stream_seed(runtime.seed, "train"), m.n_steps, m.dt, runtime.device,
                                    runtime.dtype)
        self.snapshot_paths = brownian_test_set(runtime.seed, SNAPSHOT_PATHS, m.n_steps, m.dt,
                                                runtime.device, runtime.dtype)
        oracle = reference_for(m)
        self.oracle_sigma = None if oracle is None else oracle.sigma_curve(m.times.cpu().double().numpy())
        self.step = 0
        self._events: Callback = CallbackList()
        self._control = RunControl()
        self._started = time.perf_counter()

    # --- to implement ----------------------------------------------------------------------------------
    @abstractmethod
    def _train(self) -> None:
        """Run the whole schedule through :meth:`_iterate`."""

    @abstractmethod
    def evaluate(self, brownian: Brownian) -> Paths:
        """The learned market and holdings along given increments (tensors, no gradients)."""

    @abstractmethod
    def weights(self) -> dict[str, dict[str, np.ndarray]]:
        """Trained parameters as plain arrays, per network."""

    # --- shared machinery ----------------------------------------------------------------------------
    def run(self, callbacks: Callback | None = None, control: RunControl | None = None) -> RunOutcome:
        """Train, reporting to ``callbacks``; ``control`` may pause or stop at iteration boundaries."""
        self._events = callbacks or CallbackList()
        self._control = control or RunControl()
        self._started = time.perf_counter()
        s = self.scenario
        self._events.on_event(RunStarted(s.name, self.name, s.solver.rounds, s.solver.total_iterations,
                                         s.n_agents, tuple(s.agent_names)))
        try:
            self._train()
            outcome = RunOutcome("completed", self.step)
        except Interrupted:
            outcome = RunOutcome("interrupted", self.step, f"stopped at iteration {self.step}")
        except Diverged as exc:
            outcome = RunOutcome("diverged", self.step, f"diverged at iteration {self.step}: {exc}")
        self._events.on_event(RunEnded(outcome.status, outcome.step, outcome.message))
        return outcome

    def _iterate(self, round_index: int, phase: Phase, iterations: int,
                 step_fn: Callable[[int], dict[str, torch.Tensor]]) -> dict[str, float]:
        """Call ``step_fn`` for each iteration of a phase, with events, snapshots and the NaN guard."""
        self._events.on_event(PhaseStarted(round_index, phase, iterations))
        losses: dict[str, float] = {}
        eval_every = self.scenario.solver.eval_every
        for i in range(iterations):
            if self._control.poll():
                raise Interrupted
            losses = {key: float(value.detach()) for key, value in step_fn(i).items()}
            bad = [key for key, value in losses.items() if not math.isfinite(value)]
            if bad:
                raise Diverged(f"{bad[0]} = {losses[bad[0]]}")
            self.step += 1
            self._events.on_event(IterationEnded(round_index, phase, i, self.step, losses,
                                                 time.perf_counter() - self._started))
            if self.step % eval_every == 0 or i == iterations - 1:
                self._events.on_event(self.snapshot())
        self._events.on_event(PhaseEnded(round_index, phase, losses))
        return losses

    @torch.no_grad()
    def snapshot(self) -> Snapshot:
        """Evaluate on a few fixed paths: market curves, one sample path and error measures."""
        paths = self.evaluate(self.snapshot_paths)
        sigma = paths.sigma.mean(0).cpu().double().numpy()
        metrics = {
            "eval/clearing": float(clearing_error(paths.phidot).mean()),
            "eval/terminal": float(terminal_error(self.model, paths.S, paths.W).mean()),
        }
        if self.oracle_sigma is not None:
            rel = np.abs(sigma[:-1] - self.oracle_sigma[:-1]) / self.oracle_sigma[:-1]
            metrics["eval/sigma_error"] = float(rel.max())
        as_np = lambda x: x.detach().cpu().double().numpy()  # noqa: E731
        return Snapshot(self.step, as_np(paths.t), sigma, as_np(paths.mu.mean(0)), as_np(paths.mu[0]),
                        as_np(paths.S[0]), as_np(paths.phi[0]), as_np(paths.phidot[0]), metrics)
