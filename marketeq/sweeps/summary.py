"""The sweep's summary: one row of scalar metrics per trial, as ``summary.h5`` and ``summary.csv``.

Columns: the trial's identity (``trial``, ``group``, ``method``, ``seed``, ``status``, ``message``,
``solver``, ``wall_time_s``, ``file``), its parameters (``param/<name>``), the frictionless references
(``mu_bar``, ``S0_frictionless``), then every metric as ``<name>`` and ``<name>_se`` (standard error over
the test paths; nan where a metric has none), including ``liquidity_premium`` and ``price_discount``.
A failed trial has its identity and message and nan metrics.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from marketeq.files import write_bytes_atomically
from marketeq.hdf5 import read_table, write_table
from marketeq.sweeps.spec import Sweep, SweepError

SUMMARY_H5 = "summary.h5"
SUMMARY_CSV = "summary.csv"
IDENTITY = ("trial", "group", "method", "seed", "status", "message", "solver", "wall_time_s", "file")
TEXT_COLUMNS = ("method", "status", "message", "solver", "file")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def summary_columns(rows: Iterable[Mapping[str, Any]],
                    parameters: Iterable[str] = ()) -> dict[str, list[Any]]:
    """Rows (in trial order) as equal-length columns; a value a row lacks is nan, or "" in a text column."""
    rows = sorted(rows, key=lambda r: r["trial"])
    seen = [k for row in rows for k in row]
    names = dict.fromkeys([*(k for k in IDENTITY if k in seen), *(f"param/{p}" for p in parameters), *seen])
    columns: dict[str, list[Any]] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        text = name in TEXT_COLUMNS or any(v is not None and not _is_number(v) for v in values)
        missing: Any = "" if text else math.nan
        columns[name] = [missing if v is None else (str(v) if text else v) for v in values]
    return columns


def write_summary(rows: Iterable[Mapping[str, Any]], directory: str | Path,
                  sweep: Sweep) -> tuple[Path, Path]:
    """Write ``summary.h5`` and ``summary.csv`` (each atomically) into ``directory``."""
    directory = Path(directory)
    columns = summary_columns(rows, sweep.parameters)
    attrs = {"sweep": sweep.name, "description": sweep.description, "parameters": list(sweep.parameters),
             "sweep_toml": sweep.text, "n_trials": len(sweep.trials)}
    h5 = write_table(columns, directory / SUMMARY_H5, attrs)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in zip(*columns.values(), strict=True):
        writer.writerow([repr(float(v)) if isinstance(v, float | np.floating) else v for v in row])
    path = directory / SUMMARY_CSV
    write_bytes_atomically(path, buffer.getvalue().encode("utf-8"))
    return h5, path


def read_summary(directory: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(columns, attributes) of a sweep directory's ``summary.h5``."""
    path = Path(directory)
    if path.is_dir() and not (path / SUMMARY_H5).is_file():
        raise SweepError("sweep directory", str(path), f"has no {SUMMARY_H5}; give a directory written by "
                                                       "'marketeq sweep'")
    return read_table(path / SUMMARY_H5 if path.is_dir() else path)
