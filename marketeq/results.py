"""What a run produces, as plain numpy and floats: the boundary between the engine and HDF5/CLI/GUI.

Nothing here needs torch (a contract in ``.importlinter``): reading and showing a result file stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

if TYPE_CHECKING:  # validating a scenario needs pydantic: a summary of a result file does without it
    from marketeq.scenario import Scenario

Status = Literal["completed", "interrupted", "diverged", "failed"]


class Metric(NamedTuple):
    """A number with its standard error (nan when it has none, e.g. a deterministic quantity)."""

    value: float
    stderr: float = float("nan")


def mean_se(samples: Any) -> Metric:
    """Mean over the first axis and its standard error ``std(ddof=1) / sqrt(n)`` (nan below two samples).

    One sample axis gives floats; more axes give arrays of the other axes' shape (e.g. one per agent).
    """
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[0]
    mean = x.mean(0)
    se = x.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(mean, np.nan)
    return Metric(float(mean), float(se)) if x.ndim == 1 else Metric(mean, se)


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a tensor: duck-typed, so that this module needs no torch
        return x.detach().cpu().double().numpy()
    return np.asarray(x)


@dataclass
class Paths:
    """Simulated market on a time grid; tensors or numpy arrays (see :meth:`numpy`).

    Shapes: ``t`` (K+1,), ``W`` (B, K+1), ``dW`` (B, K), ``phi``/``phidot`` (B, K+1, N),
    ``mu``/``sigma``/``S`` (B, K+1). Flow quantities at ``t_K`` are reported but unused by Euler sums.
    Tensors come from :func:`marketeq.model.rollout.paths_to_torch`.

    With d > 1 assets (docs/model.md section 6) every field but ``t`` gains trailing axes: ``W``/``dW``
    (..., d) over the Brownian factors, ``phi``/``phidot``/``mu``/``S`` (..., d) over the assets and ``sigma``
    (B, K+1, d, d), row i asset i's loadings on the factors. One asset keeps the shapes above.
    """

    t: Any
    W: Any
    dW: Any
    phi: Any
    phidot: Any
    mu: Any
    sigma: Any
    S: Any

    def numpy(self) -> Paths:
        """A copy with every field as a float64 numpy array."""
        return Paths(**{f.name: _as_numpy(getattr(self, f.name)) for f in fields(self)})

    def select(self, index: Any) -> Paths:
        """The paths picked by ``index`` along the path axis (the grid ``t`` is kept)."""
        return Paths(**{f.name: getattr(self, f.name) if f.name == "t" else getattr(self, f.name)[index]
                        for f in fields(self)})

    @property
    def n_paths(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_assets(self) -> int:
        """d: 1 for the one-asset shapes, else the length of the trailing factor axis of ``W``."""
        return 1 if len(self.W.shape) == 2 else int(self.W.shape[-1])


class _LazyScenario:
    """``RunResult.scenario``: a :class:`~marketeq.scenario.Scenario`, or a function that validates one,
    called on first access (a result file's summary reads its metrics without loading pydantic)."""

    def __get__(self, obj: Any, owner: Any = None) -> Scenario:
        if obj is None:
            raise AttributeError("scenario")  # tells dataclass that the field has no default
        value = obj.__dict__["_scenario"]
        if callable(value):
            value = obj.__dict__["_scenario"] = value()
        return value

    def __set__(self, obj: Any, value: Scenario | Callable[[], Scenario]) -> None:
        obj.__dict__["_scenario"] = value


@dataclass
class RunResult:
    """A finished (or stopped) run: scenario, provenance, history, test-set paths, metrics and weights.

    ``scenario`` may be given as a function that validates it, called when it is first read.
    """

    scenario: Scenario = _LazyScenario()  # type: ignore[assignment]  # a descriptor, see its docstring
    scenario_toml: str
    solver: str
    status: Status
    provenance: dict[str, str | int | float]
    history: dict[str, np.ndarray]  # "step" plus "group/name" columns of equal length
    paths: Paths | None  # numpy, on the seeded test set
    metrics: dict[str, Metric]
    oracle_name: str | None = None
    oracle_paths: Paths | None = None
    oracle_metrics: dict[str, Metric] = field(default_factory=dict)  # the oracle's, on oracle_paths
    weights: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    message: str = ""
    wall_time_s: float = float("nan")

    @property
    def scenario_name(self) -> str:
        """The scenario's name, without validating the scenario when that has not happened yet."""
        value = self.__dict__["_scenario"]
        if not callable(value):
            return value.name
        import tomllib

        return str(tomllib.loads(self.scenario_toml).get("name", "scenario"))  # Scenario.name's default


def format_metric(metric: Metric | None) -> str:
    """``value ± stderr`` (just the value when it has no standard error); empty for None."""
    if metric is None:
        return ""
    value, se = metric
    return f"{value:.6g}" if not np.isfinite(se) else f"{value:.6g} ± {se:.2g}"


def metric_rows(result: RunResult) -> list[tuple[str, str, str]]:
    """(metric, solver value ± stderr, oracle value) rows of the final metrics table.

    A file written before results stored their oracle's metrics has none: fill them in first with
    :func:`marketeq.api.with_oracle_metrics`.
    """
    oracle = result.oracle_metrics
    return [(name, format_metric(metric), format_metric(oracle.get(name)))
            for name, metric in result.metrics.items()]


@dataclass
class GapReport:
    """Per-agent values (N,) with standard errors over the evaluation paths, and the totals."""

    agents: list[str]
    gap: np.ndarray  # mean over evaluation paths of J_n(best response) - J_n(run's policy)
    gap_se: np.ndarray
    own_J: np.ndarray  # J_n under the run's policy
    best_J: np.ndarray  # J_n under the best response
    gain: np.ndarray  # J_n(run's policy) - J_n(holding phibar_n, not trading)
    gain_se: np.ndarray
    total_gap: float
    total_gap_se: float
    total_gain: float
    total_gain_se: float
    iterations: int
    train_paths: int
    eval_paths: int
    training: str  # where the training paths came from
    wall_time_s: float = float("nan")
    selected: np.ndarray | None = None  # per agent, the training iteration kept (0: the run's own policy)
    valid_paths: int = 0  # paths that chose the kept iteration (0: none, the last iteration kept)

    @property
    def ratio(self) -> float:
        """Total gap relative to the agents' total gain over not trading."""
        return self.total_gap / self.total_gain if self.total_gain != 0 else float("nan")

    def to_dict(self) -> dict:
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["ratio"] = self.ratio
        return out
