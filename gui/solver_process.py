"""The solver's side of the desktop app: one run in a child process, reporting through a queue. Qt-free.

The app starts :func:`run_scenario` in a spawned process. Everything it learns goes into one
``multiprocessing`` queue as ``(kind, payload)`` messages, which the GUI drains on a timer:

- ``("oracle", (name, Paths) | None)`` once, before training;
- ``("approximation", (Scenario, name, Paths))`` after it when an approximation applies beside the reference;
- ``("event", Event)`` for every solver event;
- ``("finished", (RunResult, metric rows))`` or ``("failed", message)``;
- ``("ended", None)`` last, whatever happened.

:func:`gap_job` measures the equilibrium gap of a finished result the same way, sending
``("gap_progress", (done, iterations))`` while it trains and ``("gap", GapReport)`` at the end.

A process rather than a thread: the solver then never competes with the event loop for the GIL, and no Qt
object is ever touched from two threads.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import marketeq

# The solver yields the CPU to the GUI when they compete.
WORKER_NICE = 5


class QueueCallback:
    """A marketeq callback that forwards every event to the app's queue.

    If the app has gone (killed, say), nobody reads the queue any more: the run is stopped instead of
    training on as an orphan.
    """

    def __init__(self, queue: Any, control: marketeq.RunControl) -> None:
        self.queue, self.control = queue, control
        self.parent = os.getppid()

    def on_event(self, event: object) -> None:
        if os.getppid() != self.parent:
            self.control.request_stop()
            return
        self.queue.put(("event", event))


def prepare_child() -> None:
    """Leave Ctrl-C to the app and share the CPU with it.

    Ctrl-C in the app's terminal reaches the whole process group: the app decides, through the control.
    On a 2-core machine, 2 torch threads beside a busy GUI made iterations up to 40x slower (spinning
    OpenMP workers preempted by the GUI) and stalled the GUI; 1 thread and a lower priority avoid both.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(WORKER_NICE)
    except (AttributeError, OSError):
        pass
    import torch

    threads = max(1, (os.cpu_count() or 2) - 1)
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)


def run_scenario(scenario: marketeq.Scenario, control: marketeq.RunControl, queue: Any) -> None:
    """Train ``scenario`` and report everything through ``queue`` (the target of the app's process)."""
    try:
        prepare_child()
        try:
            queue.put(("oracle", marketeq.oracle_paths(scenario)))
        except Exception:  # noqa: BLE001 - the overlay is optional, the run is not
            queue.put(("oracle", None))
        try:  # the leading-order curve beside the PDE reference
            approximation = marketeq.approximation_paths(scenario)
        except Exception:  # noqa: BLE001 - optional as well
            approximation = None
        if approximation is not None:
            queue.put(("approximation", (scenario, *approximation)))
        result = marketeq.solve(scenario, callbacks=[QueueCallback(queue, control)], control=control)
        queue.put(("finished", (result, marketeq.metric_rows(result))))
    except Exception as exc:  # noqa: BLE001 - shown in the window
        logging.getLogger(__name__).exception("the run failed")
        queue.put(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        queue.put(("ended", None))


GAP_PROGRESS_EVERY = 5  # iterations between progress messages


def gap_job(result: marketeq.RunResult, iterations: int, queue: Any) -> None:
    """The equilibrium gap of ``result`` (``marketeq.gap.result_gap``), reported through ``queue``."""
    try:
        prepare_child()
        from marketeq.gap import result_gap

        def progress(done: int, total: int) -> None:
            if done % GAP_PROGRESS_EVERY == 0 or done == total:
                queue.put(("gap_progress", (done, total)))

        queue.put(("gap", result_gap(result, iterations, progress=progress)))
    except Exception as exc:  # noqa: BLE001 - shown in the window
        logging.getLogger(__name__).exception("the gap failed")
        queue.put(("failed", f"gap: {type(exc).__name__}: {exc}"))
    finally:
        queue.put(("ended", None))
