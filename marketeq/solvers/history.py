"""The training history every solver keeps: per-iteration losses and snapshot metrics by step."""

from __future__ import annotations

import math

import numpy as np

from marketeq.solvers.events import Event, IterationEnded, Snapshot

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
