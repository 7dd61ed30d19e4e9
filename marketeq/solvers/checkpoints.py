"""Checkpoint files of a run: the sink that saves the solver's state, and the checked resume.

What a state holds and how it is captured lives in :mod:`marketeq.solvers.state`; when it is saved and how
a run rolls back, in :class:`marketeq.solvers.base.Solver`; the file format in
:mod:`marketeq.hdf5.checkpoints`. ``api.solve`` and the CLI only choose the file names.
"""

from __future__ import annotations

import os
from typing import Any

from marketeq.hdf5 import Checkpoint, ResultFileError, read_checkpoint, write_checkpoint
from marketeq.scenario import Scenario, scenario_to_toml
from marketeq.solvers.base import CheckpointSink
from marketeq.solvers.state import State

__all__ = ["checkpoint_sink", "first_difference", "read_resume", "resume_failed"]


def read_resume(path: str | os.PathLike[str], scenario: Scenario) -> Checkpoint:
    """The checkpoint at ``path``, refused unless it was written for this scenario and seed.

    Raises:
        ResultFileError: the file cannot be read, or it belongs to another scenario or seed.
    """
    saved = read_checkpoint(path)
    # The device may change (a CPU checkpoint may go on on a GPU), everything else must match.
    ours = scenario.replace(**{"run.device": saved.scenario.run.device}).model_dump(by_alias=True)
    difference = first_difference(saved.scenario.model_dump(by_alias=True), ours)
    if difference is not None:
        key, theirs, mine = difference
        raise ResultFileError(path, f"was written for another run ({key} = {theirs!r} there, {mine!r} here)",
                              "resume with the scenario and seed it was written with, or delete it to start "
                              "again")
    return saved


def resume_failed(path: str | os.PathLike[str] | None, exc: Exception) -> ResultFileError:
    """The error for a saved state that the solver refuses (:class:`~marketeq.solvers.base.ResumeError`)."""
    return ResultFileError(path or "checkpoint", str(exc),
                           "delete it to start the run again from the beginning")


def first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """(dotted key, value in ``a``, value in ``b``) of the first difference of two nested dicts, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            found = first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{prefix}[{i}]")
            if found is not None:
                return found
        return None
    return None if a == b else (prefix, a, b)


def checkpoint_sink(path: str | os.PathLike[str], scenario: Scenario, solver: str,
                    run_provenance: dict[str, Any]) -> CheckpointSink:
    """Where the solver hands its state: written atomically to ``path`` with the scenario and provenance."""
    toml = scenario_to_toml(scenario)

    def save(state: State) -> None:
        write_checkpoint(path, state, scenario_toml=toml, solver=solver, provenance=run_provenance)

    return save
