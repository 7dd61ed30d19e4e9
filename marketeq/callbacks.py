"""Subscribers to solver events: the training history (kept by every solver, :mod:`marketeq.solvers.history`)
and the console progress bar."""

from __future__ import annotations

import time

from marketeq.solvers.events import Event, IterationEnded, PhaseStarted, RunEnded, RunStarted
from marketeq.solvers.history import PHASE_CODES, HistoryRecorder

__all__ = ["PHASE_CODES", "HistoryRecorder", "ProgressBar"]


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
