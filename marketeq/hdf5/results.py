"""Result files: one :class:`~marketeq.results.RunResult` per file, or several methods' results on one
scenario in a comparison file. Written atomically, read back re-validated; layout in ``docs/hdf5.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import h5py
import numpy as np

from marketeq.hdf5.files import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_SUFFIX,
    COMPARISON_FORMAT,
    COMPRESS,
    FORMAT,
    SCHEMA_VERSION,
    STR,
    ResultFileError,
    escape,
    open_checked,
    plain_attrs,
    readable_version,
    required,
    text,
    write_atomically,
)
from marketeq.hdf5.groups import (
    history_links,
    read_history,
    read_metrics,
    read_paths,
    read_scenario_toml,
    read_weights,
    validate_scenario,
    write_history,
    write_metrics,
    write_paths,
    write_provenance,
    write_scenario,
    write_weights,
)
from marketeq.methods import current_name
from marketeq.results import Metric, RunResult, Status


def write_result(result: RunResult, path: str | os.PathLike[str], compress: bool = True) -> Path:
    """Write ``result`` to ``path`` atomically and return the path; ``compress=False`` skips gzip (several
    times faster for large runs, several times larger: for a partial result that must reach the disk soon).

    The file is built as a hidden temporary file in the target's directory and moved over the target with
    :func:`os.replace` only once it is complete and closed, so readers see the old file or the new one,
    never a partial one. On any error the temporary file is removed and the target is left as it was.

    Raises:
        ResultFileError: the file cannot be created (missing directory, no permission, disk full), the
            result has history columns whose names collide, or a metric is not finite although the run
            did not diverge.
    """
    target = Path(path)
    links = history_links(list(result.history), target)
    _check_metrics(result, target)
    token = COMPRESS.set(compress)
    try:
        return write_atomically(target, lambda f: _write_result_into(f, result, links))
    finally:
        COMPRESS.reset(token)


def write_comparison(results: Mapping[str, RunResult], path: str | os.PathLike[str]) -> Path:
    """Write several methods' results on one scenario into one file, atomically: ``/methods/<name>`` holds
    each result in the layout of :func:`write_result` (read one back with ``read_result(path, method=name)``).
    """
    target = Path(path)
    checked = {name: history_links(list(r.history), target) for name, r in results.items()}
    for result in results.values():
        _check_metrics(result, target)

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = COMPARISON_FORMAT
        f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        f.attrs["methods"] = np.array(list(results), dtype=STR)
        f.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        methods = f.create_group("methods", track_order=True)
        for name, result in results.items():
            _write_result_into(methods.create_group(escape(name)), result, checked[name])

    return write_atomically(target, fill)


def _check_metrics(result: RunResult, target: Path) -> None:
    bad = [name for name, metric in result.metrics.items() if not math.isfinite(Metric(*metric).value)]
    if bad and result.status != "diverged":
        raise ResultFileError(target, f"metric {bad[0]!r} is {Metric(*result.metrics[bad[0]]).value} but the "
                                      f"status is {result.status!r}",
                              "only a diverged result may hold non-finite metrics; report this as a bug")


def _write_result_into(f: h5py.Group, result: RunResult, links: Mapping[str, str]) -> None:
    _write_root(f, result)
    write_scenario(f, result.scenario, result.scenario_toml)
    write_provenance(f, result.provenance)
    write_history(f, result.history, links)
    for name, paths in (("solver", result.paths), ("oracle", result.oracle_paths)):
        if paths is not None:
            write_paths(f.require_group("paths"), name, paths.numpy(), result.scenario.agent_names)
    write_metrics(f, result.metrics)
    if result.oracle_metrics:
        write_metrics(f, result.oracle_metrics, "oracle_metrics")
    write_weights(f, result.weights)


def _write_root(f: h5py.Group, result: RunResult) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
    f.attrs["status"] = str(result.status)
    f.attrs["solver"] = str(result.solver)
    f.attrs["message"] = str(result.message)
    f.attrs["oracle_name"] = result.oracle_name or ""
    f.attrs["wall_time_s"] = np.float64(result.wall_time_s)
    f.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")


# --- reading ---------------------------------------------------------------------------------------------


def read_result(path: str | os.PathLike[str], method: str | None = None, *, arrays: bool = True) -> RunResult:
    """Read a result file written by :func:`write_result`, or one method of a comparison file.

    Paths come back as float64 numpy arrays (``None`` when the file has none), metrics as
    :class:`~marketeq.results.Metric`, history columns as numpy arrays, the scenario re-validated from its
    stored TOML. ``arrays=False`` leaves out the paths and weights, the bulk of the file: enough for a
    summary of its metrics.

    Raises:
        ResultFileError: the file is missing, unreadable, not HDF5, truncated or damaged, not a marketeq
            result, of an unsupported schema version, or incomplete; or ``method`` is not in it.
    """
    def read(f: h5py.File, source: Path) -> RunResult:
        if _is_comparison(f):
            stored = {current_name(name): name for name in _methods(f, source)}  # earlier names mapped
            if method is None or current_name(method) not in stored:
                given = "no method" if method is None else f"no method {method!r}"
                raise ResultFileError(source, f"a comparison of {', '.join(stored)}: {given}",
                                      "choose one with --method NAME")
            return _read(f["methods"][escape(stored[current_name(method)])], source, arrays)
        if method is not None:
            raise ResultFileError(source, f"a single result, not a comparison (no method {method!r})",
                                  "leave out --method")
        return _read(f, source, arrays)

    return open_checked(path, read)


def read_comparison(path: str | os.PathLike[str]) -> dict[str, RunResult]:
    """Every method's result from a file written by :func:`write_comparison`, in the stored order."""
    def read(f: h5py.File, source: Path) -> dict[str, RunResult]:
        if not _is_comparison(f):
            check_result_format(f, source)  # a result file, or a clear error saying what it is instead
            raise ResultFileError(source, "a single result, not a comparison",
                                  "give a file written by 'marketeq compare'")
        return {current_name(name): _read(f["methods"][escape(name)], source) for name in _methods(f, source)}

    return open_checked(path, read)


def _is_comparison(f: h5py.File) -> bool:
    return text(f.attrs.get("format", "")) == COMPARISON_FORMAT


def _methods(f: h5py.File, source: Path) -> list[str]:
    if not readable_version(f.attrs.get("schema_version")) or "methods" not in f:
        raise ResultFileError(source, "unsupported or incomplete comparison file",
                              "write it again with 'marketeq compare'")
    return [text(name) for name in np.atleast_1d(f.attrs.get("methods", np.zeros(0)))]


def _read(f: h5py.Group, source: Path, arrays: bool = True) -> RunResult:
    check_result_format(f, source)
    status = text(f.attrs.get("status", ""))
    if status not in get_args(Status):
        allowed = ", ".join(get_args(Status))
        raise ResultFileError(source, f"unknown status {status!r} (expected one of {allowed})",
                              "write it again with this marketeq")
    toml = read_scenario_toml(f, source)
    todo = "open it with the marketeq version that wrote it"
    # A summary (arrays=False) validates its scenario only when asked: pydantic would double its start-up.
    scenario = (validate_scenario(toml, source, todo) if arrays
                else lambda: validate_scenario(toml, source, todo))
    oracle_name = text(f.attrs.get("oracle_name", "")) or None
    return RunResult(
        scenario=scenario,
        scenario_toml=toml,
        solver=current_name(text(f.attrs.get("solver", ""))),
        status=status,  # type: ignore[arg-type]  # checked against Status above
        provenance=dict(plain_attrs(f["provenance"].attrs)) if "provenance" in f else {},
        history=read_history(required(f, "history", source)),
        paths=read_paths(f, "solver", source) if arrays else None,
        metrics=read_metrics(required(f, "metrics", source)),
        oracle_metrics=read_metrics(f["oracle_metrics"]) if "oracle_metrics" in f else {},
        oracle_name=oracle_name,
        oracle_paths=read_paths(f, "oracle", source) if arrays else None,
        weights=read_weights(f["weights"]) if arrays and "weights" in f else {},
        message=text(f.attrs.get("message", "")),
        wall_time_s=float(f.attrs.get("wall_time_s", float("nan"))),
    )


def check_result_format(f: h5py.Group, source: Path) -> None:
    fmt = f.attrs.get("format")
    if fmt is not None and text(fmt) == CHECKPOINT_FORMAT:
        raise ResultFileError(source, "a marketeq checkpoint, not a result file",
                              "continue its run with 'marketeq run SCENARIO -o OUTPUT --resume', where the "
                              f"checkpoint is OUTPUT{CHECKPOINT_SUFFIX}")
    if fmt is None or text(fmt) != FORMAT:
        found = "no 'format' attribute" if fmt is None else f"format = {text(fmt)!r}"
        raise ResultFileError(source, f"not a marketeq result file ({found}, expected {FORMAT!r})",
                              "give a .h5 file written by 'marketeq run' or marketeq.write_result")
    version = f.attrs.get("schema_version")
    if version is None or not readable_version(version):
        found = "no schema_version attribute" if version is None else f"schema_version {text(version)}"
        raise ResultFileError(source, f"{found} is not supported (this marketeq reads schema_version "
                                      f"{SCHEMA_VERSION} and the earlier 1)",
                              "open it with the marketeq version that wrote it, or re-run the scenario")
