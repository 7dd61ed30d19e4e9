"""The solver off the GUI thread: a :class:`SolverWorker` in a ``QThread``, steered by a ``RunControl``.

The worker calls ``marketeq.solve(scenario, callbacks=[bridge], control=run_control)``. The bridge turns
each solver event into a Qt signal; the receivers live in the GUI thread, so Qt queues the call and the
solver never touches a widget. Events are frozen dataclasses of plain values: moving the worker into a
process later changes only this file.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

import marketeq

# Modules that the solver imports lazily during its first iterations. Importing holds the GIL while C
# extensions load: measured, torch._dynamo (pulled in by the first Adam step) stalled the GUI thread for
# 150-300 ms per run start; imported on the GUI thread before the first run, the largest gap fell to ~10 ms.
LAZY_IMPORTS = ("torch._dynamo",)
# The solver's thread (and the torch threads it starts) yields the CPU to the GUI thread when they compete.
WORKER_NICE = 5
_preloaded = False


def preload() -> None:
    """Import the solver's lazy imports now (about 1 s, once per process), not in the middle of a run."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True
    for name in LAZY_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - only an optimisation
            pass


# How often Python hands the GIL between threads while both want it (default 5 ms). A repaint calls back
# into Python for every plot item, re-taking the GIL from the solver's thread each time: measured on the
# quickstart, the largest gap between 10 ms timer ticks fell from 50-75 ms to 25-31 ms at 0.5 ms, and the
# run did not get slower.
SWITCH_INTERVAL_S = 0.0005


def share_the_cpu_with_the_gui() -> None:
    """Keep a core and a fair share of the GIL for the event loop while the solver runs in this process.

    Caps torch's intra-op threads at one less than the cores: on a 2-core machine, 2 torch threads beside
    the GUI thread made training iterations up to 40x slower (spinning OpenMP workers preempted by the
    GUI thread) and let the GUI stall; 1 thread avoids both.
    """
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
    try:
        import torch  # already loaded by marketeq
    except ImportError:
        return
    threads = max(1, (os.cpu_count() or 2) - 1)
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)


def lower_thread_priority(nice: int = WORKER_NICE) -> None:
    """Raise the calling thread's nice value (Linux: per thread; elsewhere a no-op)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


class EventBridge(QObject):
    """A marketeq callback that re-emits every event as a (queued, cross-thread) Qt signal."""

    event = Signal(object)

    def on_event(self, event: object) -> None:
        self.event.emit(event)


class SolverWorker(QObject):
    """Runs one scenario in whatever thread it has been moved to; reports only through signals."""

    oracle_ready = Signal(object)  # (name, numpy Paths) or None
    finished = Signal(object, object)  # RunResult, metric rows
    failed = Signal(str)

    def __init__(self, scenario: marketeq.Scenario) -> None:
        super().__init__()
        self.scenario = scenario
        self.control = marketeq.RunControl()
        self.bridge = EventBridge()

    @Slot()
    def run(self) -> None:
        lower_thread_priority()
        try:
            try:
                self.oracle_ready.emit(marketeq.oracle_paths(self.scenario))
            except Exception:  # noqa: BLE001 - the overlay is optional, the run is not
                self.oracle_ready.emit(None)
            result = marketeq.solve(self.scenario, callbacks=[self.bridge], control=self.control)
            # metric_rows evaluates the oracle's metrics: keep that off the GUI thread too
            self.finished.emit(result, marketeq.metric_rows(result))
        except Exception as exc:  # noqa: BLE001 - shown in the window instead of killing the thread
            logging.getLogger(__name__).exception("the run failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        finally:
            # hand the objects back to the GUI thread, where deleteLater() can still run once ours ends
            home = QCoreApplication.instance().thread()
            self.bridge.moveToThread(home)
            self.moveToThread(home)
            QThread.currentThread().quit()


class SolverRunner(QObject):
    """Starts, pauses, resumes and stops runs, one at a time; lives in the GUI thread."""

    event = Signal(object)
    oracle_ready = Signal(object)
    finished = Signal(object, object)
    failed = Signal(str)
    stopped = Signal()  # the worker thread has ended, whatever the outcome

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: SolverWorker | None = None
        preload()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def paused(self) -> bool:
        return self._worker is not None and self._worker.control.paused

    def start(self, scenario: marketeq.Scenario) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        share_the_cpu_with_the_gui()
        thread, worker = QThread(), SolverWorker(scenario)
        thread.setObjectName("marketeq-solver")
        worker.moveToThread(thread)
        worker.bridge.moveToThread(thread)
        queued = Qt.ConnectionType.QueuedConnection
        worker.bridge.event.connect(self.event, queued)
        worker.oracle_ready.connect(self.oracle_ready, queued)
        worker.finished.connect(self.finished, queued)
        worker.failed.connect(self.failed, queued)
        thread.started.connect(worker.run)
        thread.finished.connect(self._cleanup)
        self._thread, self._worker = thread, worker
        thread.start()

    def pause(self) -> None:
        if self._worker is not None:
            self._worker.control.pause()

    def resume(self) -> None:
        if self._worker is not None:
            self._worker.control.resume()

    def stop(self) -> None:
        """Ask the run to stop at the next iteration; it still returns an evaluated partial result."""
        if self._worker is not None:
            self._worker.control.request_stop()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the worker thread ends (for closing the window and for tests)."""
        return self._thread is None or self._thread.wait(timeout_ms)

    @Slot()
    def _cleanup(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        self.stopped.emit()
