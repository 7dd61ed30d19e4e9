"""Errors that the command line reports as one line (exit code 2), besides the scenario's own
:class:`marketeq.scenario.ScenarioError`: files that cannot be read or written, and a missing device.

Kept apart from :mod:`marketeq.runtime` (torch) and :mod:`marketeq.hdf5` (h5py) so that the CLI can catch
them without loading either.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["DeviceUnavailable", "ResultFileError"]


class DeviceUnavailable(RuntimeError):
    """The scenario asks for a device this machine does not have (``cuda`` without a GPU)."""


class ResultFileError(ValueError):
    """A result file that cannot be written or read; ``str()`` is one line: file, problem, what to do."""

    def __init__(self, path: str | os.PathLike[str], problem: str, todo: str) -> None:
        self.path, self.problem, self.todo = str(path), _one_line(problem), _one_line(todo)
        super().__init__(f"{self.path}: {self.problem}; {self.todo}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, so it can cross a process boundary with the events
        return type(self), (self.path, self.problem, self.todo)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
