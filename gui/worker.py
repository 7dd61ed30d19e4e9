"""The solver off the GUI: :class:`SolverRunner` starts one run at a time in a child process.

The child (:func:`gui.solver_process.run_scenario`) reports through a ``multiprocessing`` queue; a timer in
the GUI thread drains it and re-emits each message as an ordinary, same-thread Qt signal. Nothing crosses
threads through Qt, and the solver does not share the GUI's interpreter lock: the event loop stays live
however hard the solver works. Run, Pause, Resume and Stop go to the child through a ``RunControl`` made
of multiprocessing events.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

import marketeq
from gui.solver_process import gap_job, run_scenario

DRAIN_MS = 50  # how often the queue is read
MAX_MESSAGES_PER_DRAIN = 2000  # a burst is spread over a few ticks instead of freezing one
JOIN_S = 10.0  # how long an ended child may take to exit before it is terminated

log = logging.getLogger(__name__)


class SolverRunner(QObject):
    """Starts, pauses, resumes and stops runs, one at a time; lives in the GUI thread."""

    event = Signal(object)  # every solver event
    oracle_ready = Signal(object)  # (name, numpy Paths) or None
    approximation_ready = Signal(object)  # (Scenario, name, numpy Paths)
    finished = Signal(object, object)  # RunResult, metric rows
    failed = Signal(str)
    gap_progress = Signal(int, int)  # iterations done, iterations
    gap_ready = Signal(object)  # marketeq.gap.GapReport
    stopped = Signal()  # the run has ended, whatever the outcome

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # spawn, not fork: a forked copy of a process that runs Qt and torch threads can deadlock
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._queue: Any = None
        self._control: marketeq.RunControl | None = None
        self._ended_at: float | None = None  # when the child said its last word
        self.job = ""  # "run" or "gap" while one is in progress
        self._timer = QTimer(self, interval=DRAIN_MS)
        self._timer.timeout.connect(self.drain)

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        """The solver process's id while a run is in progress."""
        return None if self._process is None else self._process.pid

    @property
    def paused(self) -> bool:
        return self._control is not None and self._control.paused

    def start(self, scenario: marketeq.Scenario) -> None:
        self._control = marketeq.RunControl(self._context.Event)
        self._spawn("run", run_scenario, scenario, self._control)

    def start_gap(self, result: marketeq.RunResult, iterations: int) -> None:
        """Measure the equilibrium gap of ``result`` in a solver process (Stop cancels it)."""
        self._spawn("gap", gap_job, result, iterations)

    def _spawn(self, job: str, target: Any, *args: Any) -> None:
        if self.running:
            raise RuntimeError(f"a {self.job} is already in progress")
        self._queue = self._context.Queue()
        self._process = self._context.Process(target=target, name=f"marketeq-{job}", daemon=True,
                                              args=(*args, self._queue))
        self.job, self._ended_at = job, None
        self._process.start()
        self._timer.start()

    def pause(self) -> None:
        if self._control is not None:
            self._control.pause()

    def resume(self) -> None:
        if self._control is not None:
            self._control.resume()

    def stop(self) -> None:
        """Ask the run to stop at the next iteration (it still returns an evaluated partial result);
        a gap, which has nothing partial to return, is cancelled."""
        if self._control is not None:
            self._control.request_stop()
        elif self.running:
            self._finish("the gap was cancelled")

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Deliver messages until the run has ended (for closing the window and for tests).

        Returns False if it had not ended in time; the child is then terminated.
        """
        deadline = time.monotonic() + timeout_ms / 1000
        while self.running and time.monotonic() < deadline:
            self.drain()
            time.sleep(DRAIN_MS / 1000)
        if self.running:
            self._finish(f"the solver did not stop within {timeout_ms / 1000:.0f} s and was terminated")
            return False
        return True

    def drain(self) -> None:
        """Read what the child has sent so far and emit it; reap it once it has said its last word."""
        if self._queue is None:
            return
        if not self._read():
            return  # more to read: the next tick goes on
        alive = self._process.is_alive()
        if self._ended_at is None and not alive:
            self._read()  # it may have written its last words between the read and the check
        if self._ended_at is not None:
            # a child that has ended exits within moments; waiting for it here would block the GUI
            if not alive or time.monotonic() - self._ended_at > JOIN_S:
                self._finish(None)
        elif not alive:
            self._finish(f"the solver process ended unexpectedly (exit code {self._process.exitcode})")

    def _read(self) -> bool:
        """Dispatch the queued messages; False when the per-tick budget ran out first."""
        for _ in range(MAX_MESSAGES_PER_DRAIN):
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                return True
            self._dispatch(kind, payload)
        return False

    def _dispatch(self, kind: str, payload: Any) -> None:
        if kind == "event":
            self.event.emit(payload)
        elif kind == "oracle":
            self.oracle_ready.emit(payload)
        elif kind == "approximation":
            self.approximation_ready.emit(payload)
        elif kind == "finished":
            self.finished.emit(*payload)
        elif kind == "failed":
            self.failed.emit(payload)
        elif kind == "gap_progress":
            self.gap_progress.emit(*payload)
        elif kind == "gap":
            self.gap_ready.emit(payload)
        elif kind == "ended":
            self._ended_at = time.monotonic()

    def _finish(self, failure: str | None) -> None:
        """The run is over: reap the child and tell the window."""
        self._timer.stop()
        process, self._process, self._queue, self._control = self._process, None, None, None
        self.job = ""
        process.join(0.5)
        if process.is_alive():
            log.warning("terminating the solver process %s", process.pid)
            process.terminate()
            process.join(JOIN_S)
        if failure is not None:
            self.failed.emit(failure)
        self.stopped.emit()
