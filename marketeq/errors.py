"""Errors of the run environment that the command line reports as one line (exit code 2).

Kept apart from :mod:`marketeq.runtime` (which needs torch) so that the CLI can name them without loading it.
Bad scenario values are :class:`marketeq.scenario.ScenarioError`; bad files
:class:`marketeq.hdf5.ResultFileError`.
"""

from __future__ import annotations

__all__ = ["DeviceUnavailable"]


class DeviceUnavailable(RuntimeError):
    """The scenario asks for a device this machine does not have (``cuda`` without a GPU)."""
