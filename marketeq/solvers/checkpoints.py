"""Checkpoint, resume and roll-back of a run, in one place: the state a run saves and restores, when it is
saved, how a run resumes from it or rolls back to the last good one, and the checkpoint files.

What a state holds and how it is captured from live objects lives in :mod:`marketeq.solvers.state`; the file
format in :mod:`marketeq.hdf5.checkpoints`. ``api.solve`` and the CLI only choose the file names.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

from marketeq.hdf5 import Checkpoint, ResultFileError, read_checkpoint, write_checkpoint
from marketeq.scenario import Scenario, scenario_to_toml
from marketeq.solvers.events import CheckpointSaved, Phase, RolledBack
from marketeq.solvers.state import (
    State,
    global_rng_state,
    load_global_rng_state,
    load_module_state,
    load_optimizer_state,
    module_state,
    optimizer_state,
    to_numpy,
)

__all__ = ["CheckpointSink", "Checkpointing", "Diverged", "Interrupted", "NonFinite", "ResumeError",
           "checkpoint_sink", "first_difference", "read_resume", "resume_failed"]

# Iterations between the in-memory states a divergence rolls back to (also taken at every phase start).
# Taking one costs a copy of the weights and optimiser moments: small next to an iteration.
GOOD_STATE_EVERY = 20
LR_BACKOFF = 0.5  # learning-rate factor applied at each roll-back

CheckpointSink = Callable[[State], None]


class Interrupted(Exception):
    """The run was asked to stop."""


class Diverged(Exception):
    """Non-finite values persisted after every allowed roll-back."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class NonFinite(Exception):
    """A loss or a gradient is NaN or infinite."""


class ResumeError(ValueError):
    """A saved state that does not fit this solver or its schedule."""



class Checkpointing:
    """The part of :class:`~marketeq.solvers.base.Solver` that saves, resumes and rolls back a run.

    The position of a run is (phase ordinal, iteration): the ordinal counts the calls of ``_iterate``, so a
    solver whose schedule is a deterministic sequence of phases resumes by replaying its set-up code
    (building networks and optimisers) and skipping the phases that the checkpoint had finished. The saved
    state is loaded at the start of the phase it was taken in, after that phase's set-up, so it overrides
    whatever the set-up made. The solver provides the attributes and hooks used here (``_modules``,
    ``_optimizers``, ``_generators``, ``_extra_state``, ``history``, ``_events``, ...).
    """

    # provided by the solver
    name: str
    step: int
    rollbacks: int

    def state_dict(self) -> State:
        """Everything an exact continuation needs, as plain arrays: networks, optimisers, generators,
        position (round, phase, iteration, step), history and the state a divergence would roll back to."""
        state = self._core_state()
        state["history"] = self.history.columns()
        if self._good is not None:
            state["good"] = self._good
        return state

    def load_state_dict(self, state: State) -> None:
        """Restore :meth:`state_dict` into the networks and optimisers as they exist now."""
        try:
            self._load_core(state)
            position = state["position"]
            self.rollbacks = int(position["rollbacks"])
            self._elapsed_before = float(position["elapsed_s"])
            self._started = time.perf_counter()
            self.history.load(state["history"])
            self._good = state.get("good")
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise ResumeError(f"the saved state does not fit the {self.name} solver of this scenario "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None

    def _core_state(self) -> State:
        round_index, phase, iteration = self._position
        return {
            "position": {"ordinal": np.int64(self._ordinal), "round": np.int64(round_index), "phase": phase,
                         "iteration": np.int64(iteration), "step": np.int64(self.step),
                         "rollbacks": np.int64(self.rollbacks), "elapsed_s": np.float64(self.elapsed_s)},
            "modules": {name: module_state(module) for name, module in self._modules().items()},
            "optimizers": {name: optimizer_state(opt) for name, opt in self._optimizers().items()},
            "generators": {name: to_numpy(g.get_state()) for name, g in self._generators().items()},
            "rng": global_rng_state(self.runtime.device),
            "extra": self._extra_state(),
        }

    def _load_core(self, state: State) -> None:
        position = state["position"]
        self._ordinal = int(position["ordinal"])
        phase = cast(Phase, str(position["phase"]))
        self._position = (int(position["round"]), phase, int(position["iteration"]))
        self.step = int(position["step"])
        modules = self._modules()
        if set(modules) != set(state["modules"]):
            raise KeyError(f"networks {sorted(state['modules'])}, expected {sorted(modules)}")
        for name, module in modules.items():
            load_module_state(module, state["modules"][name])
        for name, optimizer in self._optimizers().items():
            if name in state["optimizers"]:
                load_optimizer_state(optimizer, state["optimizers"][name])
        for name, generator in self._generators().items():
            generator.set_state(torch.from_numpy(np.array(state["generators"][name])))
        load_global_rng_state(state["rng"])
        self._load_extra_state(state.get("extra", {}))

    def _enter_phase(self) -> tuple[int | None, bool]:
        """(first iteration, whether it continues a saved state); None skips a phase the state had done."""
        if self._pending is None:
            return 0, False
        ordinal = int(self._pending["position"]["ordinal"])
        if self._ordinal < ordinal:
            return None, False
        if self._ordinal > ordinal:
            raise ResumeError(f"the saved state is at phase {ordinal}, which this schedule never reaches")
        state, self._pending = self._pending, None
        self.load_state_dict(state)
        return self._position[2], True

    def _boundary(self, i: int, skip_checkpoint: bool) -> None:
        """Before iteration ``i``: keep a good state, checkpoint, then obey a stop request.

        Every decision depends on the position only, so a resumed run takes the same ones.
        """
        if i == 0 or self.step % GOOD_STATE_EVERY == 0:
            self._good = self._core_state()
        every = self.scenario.solver.checkpoint_every
        saved = False
        if self._sink is not None and not skip_checkpoint and (i == 0 or (every and self.step % every == 0)):
            self._save()
            saved = True
        if self._control.poll():
            if self._sink is not None and not saved and not skip_checkpoint:
                self._save()
            raise Interrupted

    def _save(self) -> None:
        assert self._sink is not None
        self._sink(self.state_dict())
        round_index, phase, iteration = self._position
        self._events.on_event(CheckpointSaved(self.step, round_index, phase, iteration))

    @staticmethod
    def _finite(losses: dict[str, float]) -> dict[str, float]:
        bad = [key for key, value in losses.items() if not math.isfinite(value)]
        if bad:
            raise NonFinite(f"{bad[0]} = {losses[bad[0]]}")
        return losses

    def _roll_back(self, reason: str) -> int:
        """Return to the last good state with a lower learning rate; the iteration to go on from.

        Raises:
            Diverged: the roll-backs allowed by ``solver.divergence_retries`` are used up. The solver is
                left in the last good state, so its weights and evaluation stay finite.
        """
        failed = self.step
        if self._good is None:
            raise Diverged(f"diverged at iteration {failed}: {reason}", failed)
        self._load_core(self._good)
        self.history.truncate(self.step)
        retries = self.scenario.solver.divergence_retries
        if self.rollbacks >= retries:
            raise Diverged(f"diverged at iteration {failed}: {reason} (after {self.rollbacks} of "
                           f"{retries} roll-backs; weights are those of iteration {self.step})", failed)
        self.rollbacks += 1
        for optimizer in self._optimizers().values():
            for group in optimizer.param_groups:
                group["lr"] *= LR_BACKOFF
                group["base_lr"] *= LR_BACKOFF  # every group got one when its phase started
        self._events.on_event(RolledBack(failed, self.step, reason, self.rollbacks))
        return self._position[2]


def read_resume(path: str | os.PathLike[str], scenario: Scenario) -> Checkpoint:
    """The checkpoint at ``path``, refused unless it was written for this scenario and seed.

    Raises:
        ResultFileError: the file cannot be read, or it belongs to another scenario or seed.
    """
    saved = read_checkpoint(path)
    # The device may change (a CPU checkpoint may go on on a GPU), everything else must match.
    ours = scenario.replace(**{"run.device": saved.scenario.run.device}).model_dump(by_alias=True)
    difference = first_difference(saved.scenario.model_dump(by_alias=True), ours)
    if difference is not None:
        key, theirs, mine = difference
        raise ResultFileError(path, f"was written for another run ({key} = {theirs!r} there, {mine!r} here)",
                              "resume with the scenario and seed it was written with, or delete it to start "
                              "again")
    return saved


def resume_failed(path: str | os.PathLike[str] | None, exc: Exception) -> ResultFileError:
    """The error for a saved state that the solver refuses (:class:`ResumeError`)."""
    return ResultFileError(path or "checkpoint", str(exc),
                           "delete it to start the run again from the beginning")


def first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """(dotted key, value in ``a``, value in ``b``) of the first difference of two nested dicts, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            found = first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{prefix}[{i}]")
            if found is not None:
                return found
        return None
    return None if a == b else (prefix, a, b)


def checkpoint_sink(path: str | os.PathLike[str], scenario: Scenario, solver: str,
                    run_provenance: dict[str, Any]) -> CheckpointSink:
    """Where the solver hands its state: written atomically to ``path`` with the scenario and provenance."""
    toml = scenario_to_toml(scenario)

    def save(state: State) -> None:
        write_checkpoint(path, state, scenario_toml=toml, solver=solver, provenance=run_provenance)

    return save
