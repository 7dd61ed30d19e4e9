"""Ctrl-C and SIGTERM, in one place: the first stops a run after its current iteration (a checkpoint and a
partial result follow), a second one aborts at once (atomic writes keep every file whole)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Aborted(BaseException):
    """A second interrupt: leave at once (atomic writes keep every file whole)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def interrupts(control: Any) -> Iterator[None]:  # a RunControl
    """First SIGINT or SIGTERM: stop after this iteration; a second one raises :class:`Aborted`."""

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        if control.stop_requested:
            raise Aborted(signum)
        control.request_stop()
        print("marketeq: stopping after this iteration; a checkpoint and a partial result follow "
              "(press Ctrl-C again to abort)", file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def aborted(exc: BaseException) -> int:
    """Report an abort (:class:`Aborted`, or a KeyboardInterrupt outside a run) and return the exit code
    128 + signal number, as a shell does."""
    signum = exc.signum if isinstance(exc, Aborted) else signal.SIGINT
    print(f"marketeq: aborted by {signal.Signals(signum).name}; files already written are intact",
          file=sys.stderr)
    return 128 + signum
