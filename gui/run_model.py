"""The live state of one run, free of Qt: what the plots and the progress bar draw from.

The GUI thread feeds solver events to :meth:`RunModel.apply` (drained from the solver process's queue) and a
~10 Hz timer redraws from the model whenever :attr:`RunModel.version` has moved. Nothing here touches Qt,
so the model is tested without a display and could be fed from another process unchanged.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from marketeq import IterationEnded, PhaseStarted, RolledBack, RunEnded, RunResult, RunStarted, Snapshot
from marketeq.callbacks import PHASE_CODES

ETA_WINDOW = 200  # iterations over which the current speed is measured


class Columns:
    """Float columns that grow row by row on a shared step axis; NaN where a row lacks a key."""

    def __init__(self, capacity: int = 1024) -> None:
        self._steps = np.empty(capacity)
        self._data: dict[str, np.ndarray] = {}
        self.n = 0

    def append(self, step: float, values: dict[str, float]) -> None:
        if self.n == len(self._steps):
            self._grow()
        self._steps[self.n] = step
        for key, value in values.items():
            if key not in self._data:
                self._data[key] = np.full(len(self._steps), np.nan)
            self._data[key][self.n] = value
        for key, column in self._data.items():
            if key not in values:
                column[self.n] = np.nan
        self.n += 1

    def truncate(self, last_step: float) -> None:
        """Drop the rows after ``last_step`` (steps grow row by row, so they are a tail)."""
        self.n = int(np.searchsorted(self._steps[: self.n], last_step, side="right"))

    def _grow(self) -> None:
        size = 2 * len(self._steps)
        self._steps = np.resize(self._steps, size)
        self._data = {key: np.concatenate([col, np.full(size - len(col), np.nan)])
                      for key, col in self._data.items()}

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.n]

    def column(self, key: str) -> np.ndarray | None:
        """A view of one column (``None`` when no row has reported it yet)."""
        column = self._data.get(key)
        return None if column is None else column[: self.n]

    def keys(self) -> list[str]:
        return list(self._data)


@dataclass(frozen=True)
class Curves:
    """Market curves on the time grid: path means of sigma and mu, and one sample path (path 0).

    Several assets (d > 1) add trailing axes: sigma (K+1, d, d), mu and S (K+1, d), phi and phidot
    (K+1, N, d); :meth:`asset` picks what the plots draw of them.
    """

    t: np.ndarray  # (K+1,)
    sigma: np.ndarray  # (K+1,)
    mu_mean: np.ndarray  # (K+1,)
    mu_path: np.ndarray  # (K+1,)
    S_path: np.ndarray  # (K+1,)
    phi_path: np.ndarray  # (K+1, N)
    phidot_path: np.ndarray  # (K+1, N)

    @property
    def n_assets(self) -> int:
        return 1 if np.ndim(self.sigma) < 3 else int(self.sigma.shape[-1])

    def asset(self, i: int, entry: tuple[int, int] = (0, 0)) -> Curves:
        """One asset's curves (its return, price, holdings and rates) with the volatility matrix's entry
        ``entry`` (row: asset, column: factor) as sigma; one-asset curves are returned as they are. Indices
        beyond this run's assets fall back to its last (an overlaid run may have fewer)."""
        d = self.n_assets
        if d == 1:
            return self
        i, row, col = (min(k, d - 1) for k in (i, *entry))
        return Curves(self.t, self.sigma[:, row, col], self.mu_mean[:, i], self.mu_path[:, i], self.S_path[:, i],
                      self.phi_path[..., i], self.phidot_path[..., i])

    def sigma_diagonal(self) -> np.ndarray:
        """(K+1, d) the diagonal entries sigma_ii of several assets' volatility matrix; (K+1, 1) for one."""
        return np.asarray(self.sigma)[:, None] if self.n_assets == 1 else np.diagonal(self.sigma, axis1=1, axis2=2)

    @classmethod
    def from_snapshot(cls, s: Snapshot) -> Curves:
        return cls(s.t, s.sigma, s.mu_mean, s.mu_path, s.S_path, s.phi_path, s.phidot_path)

    @classmethod
    def from_paths(cls, p) -> Curves:  # noqa: ANN001 - marketeq.Paths of numpy arrays
        """Curves of numpy :class:`marketeq.Paths`; path 0 is also path 0 of every live snapshot."""
        return cls(np.asarray(p.t), p.sigma.mean(0), p.mu.mean(0), p.mu[0], p.S[0], p.phi[0], p.phidot[0])


class RunModel:
    """History columns, latest curves, oracle, status and progress of the run being shown."""

    def __init__(self) -> None:
        # Redraw counters, never reset: ``version`` moves on any change, the others on what each group of
        # plots shows, so a loss update does not repaint the market plots (a repaint costs ~6 ms per plot).
        self.version = self.losses_version = self.curves_version = 0
        self.reset()

    def reset(self, scenario_name: str = "", agent_names: tuple[str, ...] = ()) -> None:
        self.status, self.message = "idle", ""
        self.scenario_name, self.agent_names = scenario_name, tuple(agent_names)
        self.rounds = self.total_iterations = 0
        self.round = self.iteration = self.phase_iterations = self.step = 0
        self.phase = ""
        self.elapsed_s = 0.0
        self.losses = Columns()  # per training iteration: "agents/loss", "market/link", ...
        self.evals = Columns(64)  # per snapshot: "eval/clearing", "eval/terminal", ...
        self.curves: Curves | None = None
        self.oracle: Curves | None = None
        self.oracle_name: str | None = None
        # an approximation drawn beside the oracle (leading order beside the PDE), for its scenario only
        self.approximation: Curves | None = None
        self.approximation_name: str | None = None
        self._approximation_for: object = None  # the Scenario it was computed for
        self.snapshots = 0
        self.ended_status = ""  # what the solver's RunEnded said, whatever new values it may take
        self._recent: deque[tuple[int, float]] = deque(maxlen=ETA_WINDOW)
        # Paused time is kept out of the speed: the solver's elapsed_s keeps counting while it waits.
        self._paused_total = 0.0
        self._paused_at: float | None = None
        self._bump_all()

    # --- feeding -------------------------------------------------------------------------------------
    def apply(self, event: object) -> None:
        """Fold one solver event into the state."""
        if isinstance(event, IterationEnded):
            self.round, self.phase, self.iteration = event.round, event.phase, event.iteration
            self.step, self.elapsed_s = event.step, event.elapsed_s
            self.losses.append(event.step, event.losses)
            self._recent.append((event.step, event.elapsed_s - self._paused_total))
            self.losses_version += 1
        elif isinstance(event, Snapshot):
            self.curves = Curves.from_snapshot(event)
            self.evals.append(event.step, event.metrics)
            self.snapshots += 1
            self.curves_version += 1
        elif isinstance(event, RolledBack):  # the steps after to_step are replayed: draw them once
            self.losses.truncate(event.to_step)
            self.evals.truncate(event.to_step)
            self.step = event.to_step
            self.message = f"rolled back to step {event.to_step} ({event.reason}), retry {event.retry}"
            self.losses_version += 1
        elif isinstance(event, PhaseStarted):
            self.round, self.phase, self.phase_iterations, self.iteration = (
                event.round, event.phase, event.iterations, -1)
        elif isinstance(event, RunStarted):
            # the solver process sends the oracle before training starts: keep it over the reset
            kept = self.oracle, self.oracle_name, self.approximation, self.approximation_name, \
                self._approximation_for
            self.reset(event.scenario_name, event.agent_names)
            (self.oracle, self.oracle_name, self.approximation, self.approximation_name,
             self._approximation_for) = kept
            self.rounds, self.total_iterations, self.status = event.rounds, event.total_iterations, "running"
        elif isinstance(event, RunEnded):
            self.step, self.message, self.ended_status = event.step, event.message, str(event.status)
            # solve() still evaluates on the test set after training ends, unless the run broke down
            self.status = event.status if event.status in ("diverged", "failed") else "evaluating"
        self.version += 1

    def set_oracle(self, name: str | None, paths) -> None:  # noqa: ANN001 - marketeq.Paths or None
        self.oracle_name = name
        self.oracle = None if paths is None else Curves.from_paths(paths)
        self.version += 1
        self.curves_version += 1

    def set_approximation(self, scenario: object, name: str | None, paths) -> None:  # noqa: ANN001
        """An approximation of ``scenario``'s equilibrium (numpy Paths) to draw beside its oracle."""
        self._approximation_for, self.approximation_name = scenario, name
        self.approximation = None if paths is None else Curves.from_paths(paths)
        self.version += 1
        self.curves_version += 1

    def set_status(self, status: str, message: str = "") -> None:
        self.status, self.message = status, message
        self.version += 1

    def set_paused(self, paused: bool, now: float | None = None) -> None:
        """Pause or resume the clock of the ETA (``now``: a monotonic time in seconds, for tests)."""
        now = time.monotonic() if now is None else now
        if paused and self._paused_at is None:
            self._paused_at = now
        elif not paused and self._paused_at is not None:
            self._paused_total += now - self._paused_at
            self._paused_at = None
        self.set_status("paused" if paused else "running")

    def load_result(self, result: RunResult) -> None:
        """Show a finished (or stopped, or opened) result: its history and its test-set curves."""
        scenario = result.scenario
        kept = (self._approximation_for, self.approximation_name, self.approximation) \
            if self._approximation_for == scenario else (None, None, None)
        self.reset(scenario.name, tuple(scenario.agent_names))
        self._approximation_for, self.approximation_name, self.approximation = kept
        history = result.history
        steps = np.asarray(history.get("step", np.zeros(0)))
        if scenario.solver.adaptive:  # a self-stopping run planned nothing: what it took is its total
            rounds = result.metrics.get("convergence/rounds")
            self.rounds = int(rounds.value) if rounds is not None else 0
            self.total_iterations = int(steps[-1]) if len(steps) else 0
        else:
            self.rounds, self.total_iterations = scenario.solver.rounds, scenario.solver.total_iterations
        for key in ("losses", "evals"):
            self._load_columns(getattr(self, key), history, steps, evals=key == "evals")
        self.step = int(steps[-1]) if len(steps) else 0
        if len(steps) and "run/round" in history:
            self.round = int(history["run/round"][-1])
            codes = {code: name for name, code in PHASE_CODES.items()}
            self.phase = codes.get(int(history.get("run/phase", [0])[-1]), "")
        self.elapsed_s = float(result.wall_time_s)
        if result.paths is not None:
            self.curves = Curves.from_paths(result.paths)
        if result.oracle_paths is not None:  # solve() attaches the oracle whenever one exists
            self.set_oracle(result.oracle_name, result.oracle_paths)
        self.status, self.message = result.status, result.message
        self._bump_all()

    def _bump_all(self) -> None:
        self.version += 1
        self.losses_version += 1
        self.curves_version += 1

    @staticmethod
    def _load_columns(columns: Columns, history: dict, steps: np.ndarray, evals: bool) -> None:
        keys = [k for k in history
                if k != "step" and not k.startswith("run/") and k.startswith("eval/") == evals]
        for i, step in enumerate(steps):
            row = {k: float(history[k][i]) for k in keys if math.isfinite(history[k][i])}
            if row or not evals:
                columns.append(float(step), row)

    # --- reading -------------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_iterations) if self.total_iterations else 0.0

    @property
    def eta_s(self) -> float:
        """Seconds left at the speed of the last iterations (nan before there is a speed)."""
        if len(self._recent) < 2 or self.status not in ("running", "paused"):
            return math.nan
        (s0, t0), (s1, t1) = self._recent[0], self._recent[-1]
        if s1 <= s0:
            return math.nan
        return (t1 - t0) / (s1 - s0) * max(0, self.total_iterations - self.step)

    def progress_text(self) -> str:
        """One line for the progress bar: round, phase, iteration, step and ETA."""
        if self.status == "idle":
            return "ready"
        parts = [f"{self.status} ({self.ended_status})" if self.status == "evaluating" and self.ended_status
                 else self.status]
        live = self.status in ("running", "paused", "stopping")
        if self.rounds:
            parts.append(f"round {self.round + 1}/{self.rounds}")
        if self.phase and live:
            parts.append(f"{self.phase} iteration {self.iteration + 1}/{self.phase_iterations}")
        parts.append(f"step {self.step}/{self.total_iterations}")
        eta = self.eta_s
        parts.append(f"ETA {format_seconds(eta)}" if math.isfinite(eta) else format_seconds(self.elapsed_s))
        return " · ".join(parts)


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
