"""The default backend: trials in a pool of local processes (no server); one worker runs them in-process."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from marketeq.sweeps.spec import Trial
from marketeq.sweeps.trial import record_failure, run_trial

OnDone = Callable[[dict[str, Any]], None]


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def run_local(trials: Sequence[Trial], directory: str | os.PathLike[str], workers: int,
              on_done: OnDone) -> None:
    """Run ``trials`` on ``workers`` processes, calling ``on_done(row)`` in this process as each finishes."""
    directory = Path(directory).resolve()
    if workers <= 1 or len(trials) <= 1:
        for trial in trials:
            try:
                row = run_trial(trial, directory)
            except Exception as exc:  # e.g. its file could not be written: recorded like a worker's failure
                row = record_failure(trial, directory, exc)
            on_done(row)
        return
    # spawn, not fork: a forked copy of a process that already runs torch threads can deadlock.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(trials)), mp_context=context)
    try:
        futures = {pool.submit(run_trial, trial, directory): trial for trial in trials}
        for future in as_completed(futures):
            try:
                row = future.result()
            except Exception as exc:  # the worker died or could not report: record it here instead
                row = record_failure(futures[future], directory, exc)
            on_done(row)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
