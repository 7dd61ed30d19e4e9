"""What every solver shares: the market model, seeded noise, events, control and the iteration loop.

A solver declares its networks, optimisers and random generators (:meth:`Solver._modules`,
:meth:`Solver._optimizers`, :meth:`Solver._generators`) and runs its schedule through :meth:`Solver._iterate`;
it then gets for free (from :class:`marketeq.solvers.checkpoints.Checkpointing`): exact resume from a
checkpoint, a checkpoint on request or on a stop, and roll-back to the last good state with a lower learning
rate when a loss or gradient becomes non-finite.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from marketeq.model.brownian import Brownian, BrownianSource, brownian_test_set, stream_seed
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, stop_points
from marketeq.runtime import Runtime
from marketeq.scenario import Scenario
from marketeq.solvers.checkpoints import (  # re-exported: the solvers' errors and the checkpoint hook
    Checkpointing,
    CheckpointSink,
    Diverged,
    Interrupted,
    NonFinite,
    ResumeError,
)
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
from marketeq.solvers.history import HistoryRecorder
from marketeq.solvers.losses import clearing_error, terminal_error
from marketeq.solvers.state import (
    State,
    global_rng_state,
    load_global_rng_state,
    module_state,
)

SNAPSHOT_PATHS = 256
LR_FLOOR = 0.01  # a cosine decay ends each phase at this fraction of the round's learning rate

# Iterations shorter than this end before a stop is noticed anyway: they run without stop points, whose hooks
# cost a few per cent at three agents (measured: 13.1 s against 12.8 s for 300 quickstart iterations).
STOP_WITHIN_AFTER_S = 0.5

# A step may end its phase early by returning this key with a positive value (adaptive schedules).
PHASE_DONE = "phase/done"


class _StopWithin(Exception):
    """A stop request seen inside an iteration, before it changed any weight: the iteration is dropped."""


@dataclass(frozen=True)
class RunOutcome:
    status: Status
    step: int
    message: str = ""


class Solver(Checkpointing, ABC):
    """A solver trains on seeded noise, reports through events and is evaluated on given paths."""

    name = "solver"
    # True when an iteration changes nothing but random states before its optimiser step (through _descend):
    # a stop may then drop the iteration in progress (model.rollout.stop_points) and still resume exactly.
    stops_within_iterations = False
    verdict = ""  # how a self-stopping schedule ended: "converged ..." or "budget_exhausted ..."

    def __init__(self, scenario: Scenario, runtime: Runtime) -> None:
        self.scenario, self.runtime = scenario, runtime
        self.model = MarketModel.from_scenario(scenario, runtime.device, runtime.dtype)
        m = self.model
        self.noise = BrownianSource(stream_seed(runtime.seed, "train"), m.n_steps, m.dt, runtime.device,
                                    runtime.dtype)
        self.snapshot_paths = brownian_test_set(runtime.seed, SNAPSHOT_PATHS, m.n_steps, m.dt,
                                                runtime.device, runtime.dtype)
        self.oracle_sigma: np.ndarray | None = None  # (K+1,) the oracle's sigma on the grid, set by api.solve
        self.step = 0
        self.rollbacks = 0
        self.history = HistoryRecorder()
        self._events: Callback = CallbackList()
        self._control = RunControl()
        self._started = time.perf_counter()
        self._elapsed_before = 0.0  # seconds spent before the checkpoint this run resumed from
        self._ordinal = -1  # phases entered so far, minus one
        self._position: tuple[int, Phase, int] = (0, "agents", 0)  # round, phase, next iteration
        self._pending: State | None = None  # a resumed state, loaded when its phase starts
        self._good: State | None = None  # the last state known to be finite
        self._sink: CheckpointSink | None = None
        self._weights_changed = False  # within an iteration: an optimiser has stepped, too late to drop it
        self._last_step_s = math.inf  # the last iteration's seconds (none yet: assume a long one)

    # --- to implement ----------------------------------------------------------------------------------
    @abstractmethod
    def _train(self) -> None:
        """Run the whole schedule through :meth:`_iterate`."""

    @abstractmethod
    def evaluate(self, brownian: Brownian) -> Paths:
        """The learned market and holdings along given increments (tensors, no gradients)."""

    @abstractmethod
    def _modules(self) -> dict[str, nn.Module]:
        """The trained networks by name: saved, restored and exported as weights."""

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers that currently exist, by name (those of the running phase at least)."""
        return {}

    def _generators(self) -> dict[str, torch.Generator]:
        """Random generators owned by the solver (torch's global ones are saved anyway)."""
        return {"noise": self.noise.generator}

    def _extra_state(self) -> State:
        """Solver-specific state that the registries do not cover, as plain arrays."""
        return {}

    def _load_extra_state(self, state: State) -> None:  # noqa: B027 - an optional hook, empty by default
        """Restore :meth:`_extra_state`."""

    def weights(self) -> dict[str, dict[str, np.ndarray]]:
        """Trained parameters as plain arrays, per network."""
        return {name: module_state(module) for name, module in self._modules().items()}

    def load_weights(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        """Restore the networks from :meth:`weights` (e.g. read back from a result file)."""
        modules = self._modules()
        for name, params in weights.items():
            modules[name].load_state_dict({key: torch.as_tensor(np.asarray(v)) for key, v in params.items()})

    def planned(self) -> tuple[int, int]:
        """(rounds, iterations) the schedule plans, at most: for progress reports."""
        return self.scenario.solver.rounds, self.scenario.solver.total_iterations

    def convergence(self) -> dict[str, float]:
        """Metrics ``convergence/*`` of a self-stopping schedule; none for a fixed one."""
        return {}

    @property
    def elapsed_s(self) -> float:
        """Training seconds, including those before the checkpoint a resumed run started from."""
        return self._elapsed_before + time.perf_counter() - self._started

    @property
    def resumed_elapsed_s(self) -> float:
        """Seconds spent before the checkpoint this run resumed from (0 for a fresh run)."""
        return self._elapsed_before

    # --- shared machinery ----------------------------------------------------------------------------
    def run(self, callbacks: Callback | None = None, control: RunControl | None = None,
            resume: State | None = None, checkpoint: CheckpointSink | None = None) -> RunOutcome:
        """Train, reporting to ``callbacks``; ``control`` may pause or stop at iteration boundaries.

        Args:
            resume: a :meth:`state_dict` to continue from (e.g. read from a checkpoint file); the run
                then ends exactly as the run that saved it would have.
            checkpoint: called with :meth:`state_dict` at the start of every phase, every
                ``solver.checkpoint_every`` iterations and when a stop is requested.
        """
        self._events = CallbackList([self.history, *([callbacks] if callbacks is not None else [])])
        self._control = control or RunControl()
        self._sink, self._pending = checkpoint, resume
        self._ordinal = -1
        self._started = time.perf_counter()
        s = self.scenario
        self._events.on_event(RunStarted(s.name, self.name, *self.planned(),
                                         s.n_agents, tuple(s.agent_names)))
        try:
            self._train()
            if self._pending is not None:
                raise ResumeError("the saved state lies beyond the end of this scenario's schedule")
            recovered = (f"recovered from {self.rollbacks} divergence(s) by roll-back"
                         if self.rollbacks else "")
            message = "; ".join(part for part in (self.verdict, recovered) if part)
            outcome = RunOutcome("completed", self.step, message)
        except Interrupted:
            outcome = RunOutcome("interrupted", self.step, f"stopped at iteration {self.step}")
        except Diverged as exc:
            outcome = RunOutcome("diverged", exc.step, str(exc))
        except Exception as exc:  # e.g. a checkpoint that cannot be written: observers still see the end
            self._events.on_event(RunEnded("failed", self.step, " ".join(str(exc).split())))
            raise
        # Nothing rolls back after the run: drop its copy of the networks (1.2 GB of feedback tables at
        # 1000 agents) before the evaluation and the result's own copy of the weights.
        self._good = None
        self._events.on_event(RunEnded(outcome.status, outcome.step, outcome.message))
        return outcome

    def _iterate(self, round_index: int, phase: Phase, iterations: int,
                 step_fn: Callable[[int], dict[str, torch.Tensor]]) -> dict[str, float]:
        """Call ``step_fn`` for each iteration of a phase: events, snapshots, checkpoints and roll-backs."""
        self._ordinal += 1
        decay = self.scenario.solver.lr_decay == "cosine"
        for optimizer in self._optimizers().values():
            for group in optimizer.param_groups:  # before a saved state may replace it
                group.setdefault("base_lr", group["lr"])
        start, resumed = self._enter_phase()
        if start is None:
            return {}
        self._events.on_event(PhaseStarted(round_index, phase, iterations))
        losses: dict[str, float] = {}
        eval_every = self.scenario.solver.eval_every
        i = start
        while i < iterations:
            self._position = (round_index, phase, i)
            self._boundary(i, skip_checkpoint=resumed and i == start)
            if decay:
                self._decay_lr(i, iterations)
            try:
                losses = self._finite(self._one_iteration(step_fn, i))
            except NonFinite as exc:
                i = self._roll_back(str(exc))
                resumed = False
                continue
            done = losses.pop(PHASE_DONE, 0.0) > 0
            self.step += 1
            i += 1
            self._events.on_event(IterationEnded(round_index, phase, i - 1, self.step, losses,
                                                 self.elapsed_s))
            if self.step % eval_every == 0 or i == iterations or done:
                self._events.on_event(self.snapshot())
            if done:
                break
        self._position = (round_index, phase, iterations)
        self._events.on_event(PhaseEnded(round_index, phase, losses))
        return losses

    def _one_iteration(self, step_fn: Callable[[int], dict[str, torch.Tensor]], i: int) -> dict[str, float]:
        """One iteration's losses, through stop points when the solver allows and iterations are long."""
        started = time.perf_counter()
        if self.stops_within_iterations and self._last_step_s >= STOP_WITHIN_AFTER_S:
            losses = self._droppable_step(step_fn, i)
        else:
            losses = {key: float(value.detach()) for key, value in step_fn(i).items()}
        self._last_step_s = time.perf_counter() - started
        return losses

    def _droppable_step(self, step_fn: Callable[[int], dict[str, torch.Tensor]], i: int) -> dict[str, float]:
        """A stop requested before the iteration's weights change drops it: random states go back to its
        start, the checkpoint is taken there, and the run ends as if the stop had come at the boundary
        (measured at 1000 agents: an iteration takes 45 s, two thirds of it in the backward pass)."""
        generators = {name: g.get_state() for name, g in self._generators().items()}
        rng = global_rng_state(self.runtime.device)
        self._weights_changed = False

        def check() -> None:
            if self._control.stop_requested and not self._weights_changed:
                raise _StopWithin

        try:
            with stop_points(check):
                return {key: float(value.detach()) for key, value in step_fn(i).items()}
        except _StopWithin:
            for name, g in self._generators().items():
                g.set_state(generators[name])
            load_global_rng_state(rng)
            if self._sink is not None:
                self._save()
            raise Interrupted from None

    def _decay_lr(self, i: int, iterations: int) -> None:
        """Set the learning rates of iteration ``i`` of a phase on the cosine from the round's rate to
        ``LR_FLOOR`` of it: a function of the position only, so resumed runs take the same steps."""
        factor = LR_FLOOR + (1.0 - LR_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * i / max(iterations, 1)))
        for optimizer in self._optimizers().values():
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor

    def _descend(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One gradient step; refuses non-finite gradients, clips their norm at ``solver.grad_clip`` (> 0)."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if not torch.isfinite(norm):
            raise NonFinite(f"gradient norm = {float(norm)}")
        clip = self.scenario.solver.grad_clip
        if clip > 0:
            torch.nn.utils.clip_grads_with_norm_(params, clip, norm)
        self._weights_changed = True
        optimizer.step()

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
