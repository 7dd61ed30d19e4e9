"""Subscribers to solver events: the training history and the console progress bar."""

from __future__ import annotations

import math
import time

import numpy as np

from marketeq.solvers.events import (
    Event,
    IterationEnded,
    PhaseStarted,
    RunEnded,
    RunStarted,
    Snapshot,
)

PHASE_CODES = {"agents": 0, "market": 1, "joint": 2}


class HistoryRecorder:
    """Collects per-iteration losses and snapshot metrics into ``group/name`` columns indexed by step."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, float]] = {}

    def on_event(self, event: Event) -> None:
        if isinstance(event, IterationEnded):
            row = self.rows.setdefault(event.step, {})
            row.update(event.losses)
            row.update({"run/round": event.round, "run/phase": PHASE_CODES[event.phase],
                        "run/elapsed_s": event.elapsed_s})
        elif isinstance(event, Snapshot):
            self.rows.setdefault(event.step, {}).update(event.metrics)

    def load(self, columns: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`columns` of an earlier run (a checkpoint); NaN entries were never reported."""
        steps = [int(s) for s in np.asarray(columns["step"])]
        data = {key: np.asarray(col, dtype=np.float64) for key, col in columns.items() if key != "step"}
        self.rows = {step: {key: float(col[j]) for key, col in data.items() if not math.isnan(col[j])}
                     for j, step in enumerate(steps)}

    def truncate(self, step: int) -> None:
        """Forget the rows after ``step`` (they are about to be replayed after a roll-back)."""
        self.rows = {s: row for s, row in self.rows.items() if s <= step}

    def columns(self) -> dict[str, np.ndarray]:
        """``step`` plus one float column per key, NaN where a step did not report that key."""
        steps = sorted(self.rows)
        keys = sorted({key for row in self.rows.values() for key in row})
        out = {"step": np.asarray(steps, dtype=np.int64)}
        for key in keys:
            out[key] = np.asarray([self.rows[s].get(key, math.nan) for s in steps], dtype=np.float64)
        return out


class ProgressBar:
    """A rich progress bar over all iterations: round, phase, iteration, current losses and ETA."""

    def __init__(self, console=None, refresh_per_second: float = 4.0) -> None:  # noqa: ANN001
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.fields[where]}"), BarColumn(),
            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=console, refresh_per_second=refresh_per_second, transient=False,
        )
        self.task = None
        self.rounds = 0
        self._last = 0.0

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.rounds = event.rounds
            self.progress.start()
            self.task = self.progress.add_task("run", total=event.total_iterations, where="starting",
                                               losses="")
        elif self.task is None:
            return
        elif isinstance(event, PhaseStarted):
            self.progress.update(self.task, where=f"round {event.round + 1}/{self.rounds} {event.phase:>6}")
        elif isinstance(event, IterationEnded):
            self.progress.update(self.task, completed=event.step)
            now = time.perf_counter()
            if now - self._last > 0.25:
                self._last = now
                shown = {k: v for k, v in event.losses.items() if k.endswith(("loss", "link", "terminal"))}
                text = "  ".join(f"{k.split('/')[1]} {v:.3g}" for k, v in shown.items())
                self.progress.update(self.task, losses=text)
        elif isinstance(event, RunEnded):
            self.progress.stop()
