"""Typed progress events, the callback protocol, and RunControl: how the outside sees and steers a run.

Events are small frozen dataclasses of plain Python and numpy values, so they can cross a thread or
process boundary; callbacks never receive a reference to the solver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from marketeq.results import Status  # re-exported: RunEnded carries it

Phase = Literal["agents", "market", "joint"]  # "joint": both players in one step (baselines)


@dataclass(frozen=True)
class RunStarted:
    scenario_name: str
    solver: str
    rounds: int
    total_iterations: int
    n_agents: int
    agent_names: tuple[str, ...]


@dataclass(frozen=True)
class PhaseStarted:
    round: int  # 0-based
    phase: Phase
    iterations: int


@dataclass(frozen=True)
class IterationEnded:
    round: int
    phase: Phase
    iteration: int  # 0-based within the phase
    step: int  # global iteration counter over all phases
    losses: dict[str, float]  # "group/name" keys, e.g. "agents/loss", "market/link"
    elapsed_s: float


@dataclass(frozen=True)
class Snapshot:
    """Evaluation on a few fixed paths: the market curves and one sample path, as numpy copies."""

    step: int
    t: np.ndarray  # (K+1,)
    sigma: np.ndarray  # (K+1,) mean over paths
    mu_mean: np.ndarray  # (K+1,)
    mu_path: np.ndarray  # (K+1,) one sample path
    S_path: np.ndarray  # (K+1,)
    phi_path: np.ndarray  # (K+1, N)
    phidot_path: np.ndarray  # (K+1, N)
    metrics: dict[str, float] = field(default_factory=dict)  # "eval/clearing", "eval/terminal", ...


@dataclass(frozen=True)
class PhaseEnded:
    round: int
    phase: Phase
    losses: dict[str, float]


@dataclass(frozen=True)
class CheckpointSaved:
    """The solver's full state was saved; a resumed run continues from here."""

    step: int
    round: int
    phase: Phase
    iteration: int  # the next iteration of the phase


@dataclass(frozen=True)
class RolledBack:
    """A non-finite loss or gradient: the run went back to an earlier good state with a lower learning rate.

    Steps after ``to_step`` are replayed, so observers that keep a history drop their rows past it.
    """

    failed_step: int
    to_step: int
    reason: str  # e.g. "agents/loss = nan"
    retry: int  # 1 for the first roll-back of the run


@dataclass(frozen=True)
class RunEnded:
    status: Status
    step: int
    message: str = ""


Event = (RunStarted | PhaseStarted | IterationEnded | Snapshot | PhaseEnded | CheckpointSaved | RolledBack
         | RunEnded)


@runtime_checkable
class Callback(Protocol):
    def on_event(self, event: Event) -> None: ...


class CallbackList:
    """Fans each event out to several callbacks."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_event(self, event: Event) -> None:
        for callback in self.callbacks:
            callback.on_event(event)


class EventLike(Protocol):
    """What :class:`RunControl` needs of a flag: ``threading.Event`` and ``multiprocessing.Event`` fit."""

    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class RunControl:
    """The only way to steer a run: thread-safe stop / pause / resume, polled at iteration boundaries (a stop
    also inside long iterations, see ``Solver._droppable_step``)."""

    def __init__(self, event_factory: Callable[[], EventLike] = threading.Event) -> None:
        """``event_factory`` makes the two flags: ``threading.Event`` within a process, a multiprocessing
        context's ``Event`` to steer a run in a child process (the control is then passed to it at start)."""
        self._stop = event_factory()
        self._running = event_factory()
        self._running.set()

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def poll(self) -> bool:
        """Block while paused; return True when the run should stop."""
        while not self._running.wait(timeout=0.1):
            pass
        return self._stop.is_set()
