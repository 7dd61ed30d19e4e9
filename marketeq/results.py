"""What a run produces, as plain numpy and floats: the boundary between the engine and HDF5/CLI/GUI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from marketeq.model.rollout import Paths
from marketeq.scenario import Scenario
from marketeq.solvers.events import Status


class Metric(NamedTuple):
    """A number with its standard error (nan when it has none, e.g. a deterministic quantity)."""

    value: float
    stderr: float = float("nan")


@dataclass
class RunResult:
    """A finished (or stopped) run: scenario, provenance, history, test-set paths, metrics and weights."""

    scenario: Scenario
    scenario_toml: str
    solver: str
    status: Status
    provenance: dict[str, str | int | float]
    history: dict[str, np.ndarray]  # "step" plus "group/name" columns of equal length
    paths: Paths | None  # numpy, on the seeded test set
    metrics: dict[str, Metric]
    oracle_name: str | None = None
    oracle_paths: Paths | None = None
    weights: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    message: str = ""
    wall_time_s: float = float("nan")
