"""The optional /gap group that ``marketeq gap`` adds to an existing result file (layout in docs/hdf5.md)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from marketeq.hdf5.files import STR, attr_value, open_checked, plain, write_atomically
from marketeq.hdf5.results import check_result_format
from marketeq.results import GapReport

GAP_COLUMNS = ("gap", "gap_se", "own_J", "best_J", "gain", "gain_se")
GAP_ATTRS = ("total_gap", "total_gap_se", "total_gain", "total_gain_se", "iterations", "train_paths",
             "eval_paths", "training", "wall_time_s", "valid_paths")


def write_gap(report: GapReport, path: str | os.PathLike[str]) -> Path:
    """Store ``report`` as the /gap group of the result file ``path``, replacing an earlier one.

    Atomic like :func:`write_result`: the file is copied beside itself, the copy is edited, fsynced and moved
    over the original, so a reader never sees a half-written group.

    Raises:
        ResultFileError: ``path`` is not a readable marketeq result file, or the copy cannot be written.
    """
    target = Path(path)
    open_checked(target, check_result_format)

    def fill(f: h5py.File) -> None:
        if "gap" in f:
            del f["gap"]
        g = f.create_group("gap", track_order=True)
        agent = g.create_dataset("agent", data=np.array(report.agents, dtype=STR))
        agent.make_scale("agent")
        agent.dims[0].label = "agent"
        for column in GAP_COLUMNS:
            dset = g.create_dataset(column, data=np.asarray(getattr(report, column), dtype=np.float64))
            dset.dims[0].label = "agent"
            dset.dims[0].attach_scale(agent)
        if report.selected is not None:
            dset = g.create_dataset("selected", data=np.asarray(report.selected, dtype=np.int64))
            dset.dims[0].label = "agent"
            dset.dims[0].attach_scale(agent)
        for key in GAP_ATTRS:
            g.attrs[key] = attr_value(getattr(report, key))
        g.attrs["ratio"] = np.float64(report.ratio)
        g.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")

    return write_atomically(target, fill, edit=True)


def read_gap(path: str | os.PathLike[str]) -> GapReport | None:
    """The /gap group of a result file as a :class:`~marketeq.results.GapReport`, or None when it has none."""
    def read(f: h5py.File, source: Path) -> GapReport | None:
        check_result_format(f, source)
        if "gap" not in f:
            return None
        g = f["gap"]
        columns = {c: np.asarray(g[c][()], dtype=np.float64) for c in GAP_COLUMNS}
        attrs = {k: plain(g.attrs[k]) for k in GAP_ATTRS if k in g.attrs}  # valid_paths: not before selection
        selected = np.asarray(g["selected"][()], dtype=np.int64) if "selected" in g else None
        agents = [str(a) for a in g["agent"].asstr()[()]]
        return GapReport(agents=agents, **columns, **attrs, selected=selected)

    return open_checked(path, read, todo="run 'marketeq gap' on it again", what="/gap group")
