"""Run a sweep: skip finished trials, run the rest on a backend, keep a progress bar, write the summary."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from marketeq.files import write_bytes_atomically
from marketeq.sweeps.local import default_workers, run_local
from marketeq.sweeps.spec import Sweep, SweepError
from marketeq.sweeps.summary import write_summary
from marketeq.sweeps.trial import finished_row

Backend = Literal["local", "ray"]
SPEC_COPY = "sweep.toml"


@dataclass
class SweepOutcome:
    """What a sweep did: every trial's row, how many ran now or were reused, and the wall time."""

    rows: list[dict[str, Any]]
    ran: int
    reused: int
    wall_time_s: float
    summary: tuple[Path, Path] | None = None
    failed: list[dict[str, Any]] = field(default_factory=list)


class TrialProgress:
    """A rich progress bar over trials: done/total, failures, elapsed time and ETA."""

    def __init__(self, name: str, total: int, done: int, console: Any = None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(f"[bold]{name}"), BarColumn(), TextColumn("{task.completed}/{task.total} trials"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
            console=console, transient=False,
        )
        self.failed = 0
        self.task = self.progress.add_task(name, total=total, completed=done, note=f"{done} reused")

    def __enter__(self) -> TrialProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, row: dict[str, Any]) -> None:
        self.failed += row["status"] == "failed"
        note = f"last: {row['method']} #{row['trial']} {row['status']}"
        if self.failed:
            note += f"  [red]{self.failed} failed[/]"
        self.progress.update(self.task, advance=1, note=note)


def run_sweep(sweep: Sweep, directory: str | Path, *, backend: Backend = "local", workers: int | None = None,
              address: str | None = None, console: Any = None, progress: bool = True) -> SweepOutcome:
    """Run every trial of ``sweep`` whose file in ``directory/trials`` is not finished, then write
    ``summary.h5`` and ``summary.csv`` (also when interrupted, with the trials done so far)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(directory / SPEC_COPY, sweep.text.encode("utf-8"))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SweepError("output", str(directory), f"cannot be used as the sweep directory ({reason}); "
                                                   "choose another with -o") from None
    started = time.perf_counter()
    rows: dict[int, dict[str, Any]] = {}
    pending = []
    for trial in sweep.trials:
        row = finished_row(trial, directory)
        if row is None:
            pending.append(trial)
        else:
            rows[trial.index] = row
    reused = len(rows)
    bar = TrialProgress(sweep.name, len(sweep.trials), reused, console) if progress else None

    def on_done(row: dict[str, Any]) -> None:
        rows[row["trial"]] = row
        if bar is not None:
            bar.advance(row)

    try:
        with bar if bar is not None else contextlib.nullcontext():
            if pending:
                _backend(backend, workers, address)(pending, directory, on_done)
    finally:
        summary = write_summary(rows.values(), directory, sweep) if rows else None
    ordered = [rows[i] for i in sorted(rows)]
    return SweepOutcome(ordered, len(rows) - reused, reused, time.perf_counter() - started, summary,
                        [r for r in ordered if r["status"] == "failed"])


def _backend(name: Backend, workers: int | None, address: str | None) -> Callable[..., None]:
    if name == "ray":
        from marketeq.sweeps.ray_backend import run_ray

        return lambda trials, directory, on_done: run_ray(trials, directory, workers, address, on_done)
    count = workers or default_workers()
    return lambda trials, directory, on_done: run_local(trials, directory, count, on_done)
