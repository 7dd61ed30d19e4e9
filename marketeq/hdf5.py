"""Result and checkpoint files: a :class:`~marketeq.results.RunResult`, or a solver's saved state, as one
self-describing HDF5 file each.

The only module of marketeq that imports h5py (which is why checkpoints live here too: they share the
atomic writer, the signature and format checks and the error type with results). The layout is documented
in ``docs/hdf5.md`` and is readable with plain h5py, h5dump, pandas or xarray. Files are written atomically
(a temporary file beside the target, then :func:`os.replace`), and reading never unpickles: every value is a
plain number, string or array.

Every way a file cannot be read ends in :class:`ResultFileError`, whose message is one line naming the file,
what is wrong with it and what to do.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import h5py
import numpy as np

from marketeq.gap import GapReport
from marketeq.model.rollout import Paths
from marketeq.results import Metric, RunResult
from marketeq.scenario import Scenario, ScenarioError, load_scenario
from marketeq.solvers.events import Status

__all__ = ["CHECKPOINT_FORMAT", "COMPARISON_FORMAT", "FORMAT", "SCHEMA_VERSION", "Checkpoint",
           "ResultFileError", "checkpoint_path", "read_checkpoint", "read_comparison", "read_gap",
           "read_result", "write_checkpoint", "write_comparison", "write_gap", "write_result"]

FORMAT = "marketeq-result"
COMPARISON_FORMAT = "marketeq-comparison"
SCHEMA_VERSION = 1
CHECKPOINT_FORMAT = "marketeq-checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1
CHECKPOINT_SUFFIX = ".ckpt"

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
COMPRESS_ABOVE_BYTES = 4096  # smaller arrays gain nothing from gzip and pay a chunk index
_COMPRESS: ContextVar[bool] = ContextVar("compress", default=True)  # write_result(compress=...)
# Measured on the E1 oracle paths (B=3000, K=100, N=10, 60.6 MB raw): gzip level 1/4/9 give 51.0/50.6/50.3 MB
# in 0.9/1.0/3.1 s: float64 noise barely compresses, and levels above 4 only cost time.
GZIP_LEVEL = 4
PATH_FIELDS = tuple(f.name for f in fields(Paths))
# Dimension labels of the path datasets: B paths, K+1 grid times, K Euler steps, N agents.
PATH_DIMS = {"t": ("time",), "W": ("path", "time"), "dW": ("path", "step"), "phi": ("path", "time", "agent"),
             "phidot": ("path", "time", "agent"), "mu": ("path", "time"), "sigma": ("path", "time"),
             "S": ("path", "time")}
SCENARIO_SECTIONS = ("market", "frictions", "solver", "run")
STR = h5py.string_dtype("utf-8")


class ResultFileError(ValueError):
    """A result file that cannot be written or read; ``str()`` is one line: file, problem, what to do."""

    def __init__(self, path: str | os.PathLike[str], problem: str, todo: str) -> None:
        self.path, self.problem, self.todo = str(path), _one_line(problem), _one_line(todo)
        super().__init__(f"{self.path}: {self.problem}; {self.todo}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, so it can cross a process boundary with the events
        return type(self), (self.path, self.problem, self.todo)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- names -----------------------------------------------------------------------------------------------
# HDF5 link names cannot contain "/" and cannot be "." or empty. History keys are split on "/" into nested
# groups, weight names are kept whole; each component is escaped: "%" -> "%25", "/" -> "%2F", a lone "." ->
# "%2E". Metric names are stored as string data, never as link names, so they need no escaping.


def _escape(component: str) -> str:
    if not component:
        raise ValueError("empty name")
    text = component.replace("%", "%25").replace("/", "%2F")
    return "%2E" if text == "." else text


def _unescape(component: str) -> str:
    return "." if component == "%2E" else component.replace("%2F", "/").replace("%25", "%")


def _history_links(keys: list[str], path: Path) -> dict[str, str]:
    """HDF5 paths (relative to /history) of the history columns, or ResultFileError when two keys collide."""
    links: dict[str, str] = {}
    for key in keys:
        if key == "step":
            continue
        try:
            links[key] = "/".join(_escape(part) for part in key.split("/"))
        except ValueError:
            raise ResultFileError(path, f"history column {key!r} has an empty name part",
                                  "name history columns 'group/name'") from None
    taken = {*links.values(), "step"}
    for key, link in links.items():
        parts = link.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in taken:
                other = "step" if prefix == "step" else next(k for k, v in links.items() if v == prefix)
                raise ResultFileError(path, f"history columns {other!r} and {key!r} collide (one would be a "
                                            "group holding the other)", "rename one of them")
    return links


# --- writing ---------------------------------------------------------------------------------------------


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
    links = _history_links(list(result.history), target)
    _check_metrics(result, target)
    token = _COMPRESS.set(compress)
    try:
        return _write_atomically(target, lambda f: _write_result_into(f, result, links))
    finally:
        _COMPRESS.reset(token)


def write_comparison(results: Mapping[str, RunResult], path: str | os.PathLike[str]) -> Path:
    """Write several methods' results on one scenario into one file, atomically: ``/methods/<name>`` holds
    each result in the layout of :func:`write_result` (read one back with ``read_result(path, method=name)``).
    """
    target = Path(path)
    checked = {name: _history_links(list(r.history), target) for name, r in results.items()}
    for result in results.values():
        _check_metrics(result, target)

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = COMPARISON_FORMAT
        f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        f.attrs["methods"] = np.array(list(results), dtype=STR)
        f.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        methods = f.create_group("methods", track_order=True)
        for name, result in results.items():
            _write_result_into(methods.create_group(_escape(name)), result, checked[name])

    return _write_atomically(target, fill)


def _check_metrics(result: RunResult, target: Path) -> None:
    bad = [name for name, metric in result.metrics.items() if not math.isfinite(Metric(*metric).value)]
    if bad and result.status != "diverged":
        raise ResultFileError(target, f"metric {bad[0]!r} is {Metric(*result.metrics[bad[0]]).value} but the "
                                      f"status is {result.status!r}",
                              "only a diverged result may hold non-finite metrics; report this as a bug")


def _write_result_into(f: h5py.Group, result: RunResult, links: Mapping[str, str]) -> None:
    _write_root(f, result)
    _write_scenario(f, result.scenario, result.scenario_toml)
    _write_provenance(f, result.provenance)
    _write_history(f, result.history, links)
    for name, paths in (("solver", result.paths), ("oracle", result.oracle_paths)):
        if paths is not None:
            _write_paths(f.require_group("paths"), name, paths.numpy(), result.scenario.agent_names)
    _write_metrics(f, result.metrics)
    _write_weights(f, result.weights)


def _write_atomically(target: Path, fill: Callable[[h5py.File], None], edit: bool = False) -> Path:
    """Build the file as a temporary beside ``target`` with ``fill``, fsync it, then rename it over.

    With ``edit``, the temporary starts as a copy of ``target`` and ``fill`` changes it in place.
    """
    if not target.parent.is_dir():
        raise ResultFileError(target, f"cannot be written: directory {str(target.parent)!r} does not exist",
                              "create it first or choose another location")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if edit:
            shutil.copyfile(target, tmp)
        with h5py.File(tmp, "r+" if edit else "x") as f:
            fill(f)
        with open(tmp, "r+b") as fh:  # the data is on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ResultFileError(target, f"cannot be written ({reason})",
                                  "check that the directory exists, is writable and has free space") from exc
        raise
    return target


def _write_root(f: h5py.Group, result: RunResult) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
    f.attrs["status"] = str(result.status)
    f.attrs["solver"] = str(result.solver)
    f.attrs["message"] = str(result.message)
    f.attrs["oracle_name"] = result.oracle_name or ""
    f.attrs["wall_time_s"] = np.float64(result.wall_time_s)
    f.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")


def _attr_value(value: Any) -> Any:
    """A value h5py stores as a plain attribute: numbers, bools, strings and homogeneous lists of them."""
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        value = value.item()  # np.str_ has no HDF5 type: store every numpy scalar as its Python value
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, str):
        return str(value)  # a str subclass (torch.__version__ is a TorchVersion) has no HDF5 type
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        items = [_attr_value(v) for v in value]
        if not items:
            return np.zeros(0, dtype=np.int64)
        if all(isinstance(v, str) for v in items):
            return np.array(items, dtype=STR)
        if all(isinstance(v, int | float | np.bool_) for v in items):
            return np.asarray(items)
    return repr(value)  # None and anything exotic: informational only, the TOML is authoritative


def _write_scenario(f: h5py.File, scenario: Scenario, toml: str) -> None:
    g = f.create_group("scenario")
    g.create_dataset("toml", data=toml, dtype=STR)
    g.attrs["name"] = scenario.name
    g.attrs["description"] = scenario.description
    g.attrs["n_agents"] = np.int64(scenario.n_agents)
    data = scenario.model_dump(by_alias=True)
    for section in SCENARIO_SECTIONS:
        sub = g.create_group(section, track_order=True)
        for key, value in data[section].items():
            sub.attrs[key] = _attr_value(value)
    agents = g.create_group("agents", track_order=True)
    agents.create_dataset("gamma", data=np.asarray(scenario.gammas, dtype=np.float64))
    agents.create_dataset("xi", data=np.asarray(scenario.xis, dtype=np.float64))
    agents.create_dataset("name", data=np.array(scenario.agent_names, dtype=STR))
    agents["name"].make_scale("agent")
    for name in ("gamma", "xi", "name"):
        agents[name].dims[0].label = "agent"
        if name != "name":
            agents[name].dims[0].attach_scale(agents["name"])


def _write_provenance(f: h5py.File, provenance: Mapping[str, Any]) -> None:
    g = f.create_group("provenance", track_order=True)
    for key, value in provenance.items():
        g.attrs[key] = _attr_value(value)


def _dataset(group: h5py.Group, name: str, data: Any, labels: tuple[str, ...] = ()) -> h5py.Dataset:
    array = np.asarray(data)
    big = array.ndim > 0 and array.nbytes > COMPRESS_ABOVE_BYTES and _COMPRESS.get()
    options = {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True} if big else {}
    dset = group.create_dataset(name, data=array, **options)
    for dim, label in zip(dset.dims, labels, strict=False):
        dim.label = label
    return dset


def _write_history(f: h5py.File, history: Mapping[str, Any], links: Mapping[str, str]) -> None:
    g = f.create_group("history", track_order=True)
    step = _dataset(g, "step", history.get("step", np.zeros(0, dtype=np.int64)), ("step",))
    step.make_scale("step")
    for key, link in links.items():
        *parents, leaf = link.split("/")
        parent = g
        for part in parents:
            parent = parent[part] if part in parent else parent.create_group(part, track_order=True)
        column = _dataset(parent, leaf, history[key], ("step",))
        column.dims[0].attach_scale(step)


def _write_paths(group: h5py.Group, name: str, paths: Paths, agent_names: list[str]) -> None:
    """The eight Paths fields plus coordinate datasets ``path``, ``step`` and ``agent``.

    Every axis of every field gets a label and a dimension scale (``t`` for the time axis), the netCDF-4 way,
    so xarray (engine h5netcdf) opens the group as a labelled Dataset.
    """
    g = group.create_group(name, track_order=True)
    values = {field: np.asarray(getattr(paths, field), dtype=np.float64) for field in PATH_FIELDS}
    for field in PATH_FIELDS:
        _dataset(g, field, values[field], PATH_DIMS[field])
    n_paths, n_grid = values["W"].shape
    n_agents = values["phi"].shape[2]
    names = agent_names if len(agent_names) == n_agents else [f"agent {i + 1}" for i in range(n_agents)]
    scales = {"time": g["t"],
              "path": _dataset(g, "path", np.arange(n_paths, dtype=np.int64), ("path",)),
              "step": _dataset(g, "step", np.arange(n_grid - 1, dtype=np.int64), ("step",)),
              "agent": g.create_dataset("agent", data=np.array(names, dtype=STR))}
    g["agent"].dims[0].label = "agent"
    for label, scale in scales.items():
        scale.make_scale(label)
    for field in PATH_FIELDS:
        if field != "t":
            for dim, label in zip(g[field].dims, PATH_DIMS[field], strict=True):
                dim.attach_scale(scales[label])


def _write_metrics(f: h5py.File, metrics: Mapping[str, Metric]) -> None:
    """Three aligned columns: ``name`` (a dimension scale of strings), ``value`` and ``stderr``."""
    g = f.create_group("metrics", track_order=True)
    names = g.create_dataset("name", data=np.array(list(metrics), dtype=STR))
    names.make_scale("metric")
    rows = [Metric(*m) for m in metrics.values()]
    for column, index in (("value", 0), ("stderr", 1)):
        dset = g.create_dataset(column, data=np.array([float(m[index]) for m in rows], dtype=np.float64))
        dset.dims[0].label = "metric"
        dset.dims[0].attach_scale(names)
    names.dims[0].label = "metric"


def _write_weights(f: h5py.File, weights: Mapping[str, Mapping[str, Any]]) -> None:
    g = f.create_group("weights", track_order=True)
    for net, params in weights.items():
        sub = g.create_group(_escape(net), track_order=True)
        for param, value in params.items():
            _dataset(sub, _escape(param), np.asarray(value))


# --- tables ----------------------------------------------------------------------------------------------
# A table of named columns of equal length (numbers or strings), e.g. a sweep's summary with one row per
# trial: root attributes format = "marketeq-table" and schema_version, one dataset per column under /table
# (names escaped as above, the unescaped name kept in the column's "name" attribute), all labelled with the
# dimension "row" and attached to the /table/row scale, so pandas and xarray read it without marketeq.

TABLE_FORMAT = "marketeq-table"


def write_table(columns: Mapping[str, Any], path: str | os.PathLike[str],
                attrs: Mapping[str, Any] | None = None) -> Path:
    """Write equal-length ``columns`` (numeric arrays or lists of strings) to ``path`` atomically.

    Raises:
        ResultFileError: the file cannot be written or the columns differ in length.
    """
    target = Path(path)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ResultFileError(target, f"table columns differ in length ({sorted(lengths)})",
                              "give every column one value per row")
    n_rows = lengths.pop() if lengths else 0

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = TABLE_FORMAT
        f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        for key, value in (attrs or {}).items():
            f.attrs[key] = _attr_value(value)
        g = f.create_group("table", track_order=True)
        row = _dataset(g, "row", np.arange(n_rows, dtype=np.int64), ("row",))
        row.make_scale("row")
        for name, values in columns.items():
            array = np.asarray(values)
            if array.dtype.kind in "USO":
                array = np.array([str(v) for v in values], dtype=STR)
            dset = _dataset(g, _escape(name), array, ("row",))
            dset.attrs["name"] = name
            dset.dims[0].attach_scale(row)

    return _write_atomically(target, fill)


def read_table(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(columns, root attributes) of a table written by :func:`write_table`; strings come back as str."""
    source = Path(path)
    _check_signature(source)
    try:
        with h5py.File(source, "r") as f:
            fmt = _text(f.attrs.get("format", ""))
            if fmt != TABLE_FORMAT:
                raise ResultFileError(source, f"not a marketeq table (format = {fmt!r})",
                                      "give a summary .h5 written by 'marketeq sweep'")
            columns: dict[str, np.ndarray] = {}
            for name, dset in f["table"].items():
                if name == "row":
                    continue
                data = dset.asstr()[()] if dset.dtype.kind == "O" else dset[()]
                columns[_text(dset.attrs.get("name", _unescape(name)))] = np.asarray(data)
            return columns, dict(_plain_attrs(f.attrs))
    except ResultFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ResultFileError(source, f"damaged or incomplete table ({type(exc).__name__}: {exc})",
                              "write it again by re-running the sweep") from None


# --- reading ---------------------------------------------------------------------------------------------


def read_result(path: str | os.PathLike[str], method: str | None = None) -> RunResult:
    """Read a result file written by :func:`write_result`, or one method of a comparison file.

    Paths come back as float64 numpy arrays (``None`` when the file has none), metrics as
    :class:`~marketeq.results.Metric`, history columns as numpy arrays, the scenario re-validated from its
    stored TOML.

    Raises:
        ResultFileError: the file is missing, unreadable, not HDF5, truncated or damaged, not a marketeq
            result, of an unsupported schema version, or incomplete; or ``method`` is not in it.
    """
    def read(f: h5py.File, source: Path) -> RunResult:
        if _is_comparison(f):
            names = _methods(f, source)
            if method not in names:
                given = "no method" if method is None else f"no method {method!r}"
                raise ResultFileError(source, f"a comparison of {', '.join(names)}: {given}",
                                      "choose one with --method NAME")
            return _read(f["methods"][_escape(method)], source)
        if method is not None:
            raise ResultFileError(source, f"a single result, not a comparison (no method {method!r})",
                                  "leave out --method")
        return _read(f, source)

    return _with_file(path, read)


def read_comparison(path: str | os.PathLike[str]) -> dict[str, RunResult]:
    """Every method's result from a file written by :func:`write_comparison`, in the stored order."""
    def read(f: h5py.File, source: Path) -> dict[str, RunResult]:
        if not _is_comparison(f):
            _check_format(f, source)  # a result file, or a clear error saying what it is instead
            raise ResultFileError(source, "a single result, not a comparison",
                                  "give a file written by 'marketeq compare'")
        return {name: _read(f["methods"][_escape(name)], source) for name in _methods(f, source)}

    return _with_file(path, read)


def _is_comparison(f: h5py.File) -> bool:
    return _text(f.attrs.get("format", "")) == COMPARISON_FORMAT


def _methods(f: h5py.File, source: Path) -> list[str]:
    if not _is_int(f.attrs.get("schema_version"), SCHEMA_VERSION) or "methods" not in f:
        raise ResultFileError(source, "unsupported or incomplete comparison file",
                              "write it again with 'marketeq compare'")
    return [_text(name) for name in np.atleast_1d(f.attrs.get("methods", np.zeros(0)))]


def _with_file(path: str | os.PathLike[str], read: Any, kind: str = "result",
               todo: str = "write it again, e.g. by re-running the scenario") -> Any:
    """Open ``path`` read-only and call ``read(file, path)``, turning every failure into a ResultFileError."""
    source = Path(path)
    _check_signature(source, kind)
    # what the file is called when it cannot be opened, and when it opens but does not read
    unopened, unread = ("checkpoint", "checkpoint") if kind == "checkpoint" else ("HDF5 file", "result file")
    try:
        f = h5py.File(source, "r")
    except OSError as exc:
        raise ResultFileError(source, f"damaged or truncated {unopened} ({exc})", todo) from None
    try:
        with f:
            return read(f, source)
    except ResultFileError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ResultFileError(source, f"damaged or incomplete {unread} ({type(exc).__name__}: {exc})",
                              todo) from None


def _check_signature(source: Path, kind: str = "result") -> None:
    """Turn a missing, unreadable or non-HDF5 file into a ResultFileError before h5py sees it."""
    wanted = "a .h5 result file" if kind == "result" else f"a {CHECKPOINT_SUFFIX} checkpoint file"
    try:
        with open(source, "rb") as fh:
            head = fh.read(len(HDF5_SIGNATURE))
    except FileNotFoundError:
        raise ResultFileError(source, "no such file", f"check the path of {wanted}") from None
    except IsADirectoryError:
        raise ResultFileError(source, "is a directory", f"give the path of {wanted}") from None
    except OSError as exc:
        raise ResultFileError(source, f"cannot be read ({exc.strerror or exc})",
                              "check its permissions") from None
    # The superblock may also sit after a user block (at 512, 1024, ...); let h5py decide in that case.
    if head != HDF5_SIGNATURE and not h5py.is_hdf5(source):
        found = "an empty file" if not head else "not an HDF5 file"
        todo = ("give a .h5 file written by 'marketeq run' or marketeq.write_result" if kind == "result" else
                "delete it to start the run again from the beginning")
        raise ResultFileError(source, f"{found}, so not a marketeq {kind} file", todo) from None


def _read(f: h5py.Group, source: Path) -> RunResult:
    _check_format(f, source)
    status = _text(f.attrs.get("status", ""))
    if status not in get_args(Status):
        allowed = ", ".join(get_args(Status))
        raise ResultFileError(source, f"unknown status {status!r} (expected one of {allowed})",
                              "write it again with this marketeq")
    toml = _required(f, "scenario/toml", source).asstr()[()]
    try:
        scenario = load_scenario(source, text=toml)
    except ScenarioError as exc:
        raise ResultFileError(source, f"its stored scenario is not valid here ({exc})",
                              "open it with the marketeq version that wrote it") from None
    oracle_name = _text(f.attrs.get("oracle_name", "")) or None
    return RunResult(
        scenario=scenario,
        scenario_toml=toml,
        solver=_text(f.attrs.get("solver", "")),
        status=status,  # type: ignore[arg-type]  # checked against Status above
        provenance=dict(_plain_attrs(f["provenance"].attrs)) if "provenance" in f else {},
        history=_read_history(_required(f, "history", source)),
        paths=_read_paths(f, "solver", source),
        metrics=_read_metrics(_required(f, "metrics", source)),
        oracle_name=oracle_name,
        oracle_paths=_read_paths(f, "oracle", source),
        weights=_read_weights(f["weights"]) if "weights" in f else {},
        message=_text(f.attrs.get("message", "")),
        wall_time_s=float(f.attrs.get("wall_time_s", float("nan"))),
    )


def _check_format(f: h5py.Group, source: Path) -> None:
    fmt = f.attrs.get("format")
    if fmt is not None and _text(fmt) == CHECKPOINT_FORMAT:
        raise ResultFileError(source, "a marketeq checkpoint, not a result file",
                              "continue its run with 'marketeq run SCENARIO -o OUTPUT --resume', where the "
                              f"checkpoint is OUTPUT{CHECKPOINT_SUFFIX}")
    if fmt is None or _text(fmt) != FORMAT:
        found = "no 'format' attribute" if fmt is None else f"format = {_text(fmt)!r}"
        raise ResultFileError(source, f"not a marketeq result file ({found}, expected {FORMAT!r})",
                              "give a .h5 file written by 'marketeq run' or marketeq.write_result")
    version = f.attrs.get("schema_version")
    if version is None or not _is_int(version, SCHEMA_VERSION):
        found = "no schema_version attribute" if version is None else f"schema_version {_text(version)}"
        raise ResultFileError(source, f"{found} is not supported (this marketeq reads schema_version "
                                      f"{SCHEMA_VERSION})",
                              "open it with the marketeq version that wrote it, or re-run the scenario")


def _is_int(value: Any, expected: int) -> bool:
    try:
        return np.ndim(value) == 0 and int(value) == expected
    except (TypeError, ValueError):
        return False


def _required(f: h5py.File, name: str, source: Path) -> Any:
    if name not in f:
        raise ResultFileError(source, f"incomplete result file: /{name} is missing",
                              "write it again, e.g. by re-running the scenario")
    return f[name]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _text(value.item())
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.dtype.kind in "OS" else value.tolist()
    return value


def _plain_attrs(attrs: h5py.AttributeManager) -> Iterator[tuple[str, Any]]:
    for key in attrs:
        yield key, _plain(attrs[key])


def _datasets(group: h5py.Group, prefix: str = "") -> Iterator[tuple[str, h5py.Dataset]]:
    """(unescaped "a/b" key, dataset) of every dataset below ``group``, in creation order."""
    for name in group:
        item = group[name]
        key = prefix + _unescape(name)
        if isinstance(item, h5py.Group):
            yield from _datasets(item, key + "/")
        elif isinstance(item, h5py.Dataset):
            yield key, item


def _read_history(g: h5py.Group) -> dict[str, np.ndarray]:
    step = np.asarray(g["step"][()]) if "step" in g else np.zeros(0, dtype=np.int64)
    history: dict[str, np.ndarray] = {"step": step}
    for key, dset in _datasets(g):
        if key != "step":
            history[key] = np.asarray(dset[()])
    return history


def _read_paths(f: h5py.File, name: str, source: Path) -> Paths | None:
    if f"paths/{name}" not in f:
        return None
    g = f["paths"][name]
    missing = [field for field in PATH_FIELDS if field not in g]
    if missing:
        raise ResultFileError(source, f"incomplete result file: /paths/{name} lacks {', '.join(missing)}",
                              "write it again, e.g. by re-running the scenario")
    return Paths(**{field: np.asarray(g[field][()], dtype=np.float64) for field in PATH_FIELDS})


def _read_metrics(g: h5py.Group) -> dict[str, Metric]:
    names = g["name"].asstr()[()]
    values, stderrs = np.asarray(g["value"][()], np.float64), np.asarray(g["stderr"][()], np.float64)
    if not len(names) == len(values) == len(stderrs):
        raise ValueError(f"/metrics columns differ in length ({len(names)}, {len(values)}, {len(stderrs)})")
    return {str(n): Metric(float(v), float(s)) for n, v, s in zip(names, values, stderrs, strict=True)}


def _read_weights(g: h5py.Group) -> dict[str, dict[str, np.ndarray]]:
    return {_unescape(net): {_unescape(p): np.asarray(d[()]) for p, d in g[net].items()
                             if isinstance(d, h5py.Dataset)}
            for net in g if isinstance(g[net], h5py.Group)}


# --- the equilibrium gap ---------------------------------------------------------------------------------
# An optional /gap group added to an existing result file by `marketeq gap` (layout in docs/hdf5.md).

GAP_COLUMNS = ("gap", "gap_se", "own_J", "best_J", "gain", "gain_se")
GAP_ATTRS = ("total_gap", "total_gap_se", "total_gain", "total_gain_se", "iterations", "train_paths",
             "eval_paths", "training", "wall_time_s")


def write_gap(report: GapReport, path: str | os.PathLike[str]) -> Path:
    """Store ``report`` as the /gap group of the result file ``path``, replacing an earlier one.

    Atomic like :func:`write_result`: the file is copied beside itself, the copy is edited, fsynced and moved
    over the original, so a reader never sees a half-written group.

    Raises:
        ResultFileError: ``path`` is not a readable marketeq result file, or the copy cannot be written.
    """
    target = Path(path)
    _check_signature(target)
    try:
        with h5py.File(target, "r") as f:
            _check_format(f, target)
    except OSError as exc:
        raise ResultFileError(target, f"damaged or truncated HDF5 file ({exc})",
                              "write it again, e.g. by re-running the scenario") from None

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
        for key in GAP_ATTRS:
            g.attrs[key] = _attr_value(getattr(report, key))
        g.attrs["ratio"] = np.float64(report.ratio)
        g.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")

    return _write_atomically(target, fill, edit=True)


def read_gap(path: str | os.PathLike[str]) -> GapReport | None:
    """The /gap group of a result file as a :class:`~marketeq.gap.GapReport`, or None when it has none."""
    source = Path(path)
    _check_signature(source)
    try:
        with h5py.File(source, "r") as f:
            _check_format(f, source)
            if "gap" not in f:
                return None
            g = f["gap"]
            columns = {c: np.asarray(g[c][()], dtype=np.float64) for c in GAP_COLUMNS}
            attrs = {k: _plain(g.attrs[k]) for k in GAP_ATTRS}
            agents = [str(a) for a in g["agent"].asstr()[()]]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ResultFileError(source, f"damaged /gap group ({type(exc).__name__}: {exc})",
                              "run 'marketeq gap' on it again") from None
    return GapReport(agents=agents, **columns, **attrs)


# --- checkpoints -----------------------------------------------------------------------------------------
# A checkpoint holds a solver's state (marketeq.solvers.state): nested groups whose datasets are plain arrays,
# numbers or strings, keyed like the state dict (names escaped as above). Arrays carry a Fletcher-32 checksum,
# so a damaged file fails to load instead of resuming from garbage.


@dataclass(frozen=True)
class Checkpoint:
    """A solver's saved state and the scenario it belongs to."""

    path: Path
    scenario: Scenario
    scenario_toml: str
    solver: str
    provenance: dict[str, Any]
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["position"]["step"])


def checkpoint_path(output: str | os.PathLike[str]) -> Path:
    """Where ``marketeq run -o OUTPUT`` keeps the checkpoint of its run: ``OUTPUT.ckpt`` beside the output."""
    target = Path(output)
    return target.with_name(target.name + CHECKPOINT_SUFFIX)


def write_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any], *, scenario_toml: str,
                     solver: str, provenance: Mapping[str, Any]) -> Path:
    """Write a solver's :meth:`~marketeq.solvers.base.Solver.state_dict` atomically (as :func:`write_result`).

    Raises:
        ResultFileError: the file cannot be written.
    """
    target = Path(path)

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = CHECKPOINT_FORMAT
        f.attrs["schema_version"] = np.int64(CHECKPOINT_SCHEMA_VERSION)
        f.attrs["solver"] = str(solver)
        f.attrs["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        for key, value in state.get("position", {}).items():  # for h5dump and h5ls -v
            f.attrs[key] = _attr_value(value)
        f.create_group("scenario").create_dataset("toml", data=scenario_toml, dtype=STR)
        _write_provenance(f, provenance)
        _write_tree(f.create_group("state", track_order=True), state)

    return _write_atomically(target, fill)


def _write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    for key, value in tree.items():
        name = _escape(str(key))
        if isinstance(value, Mapping):
            _write_tree(group.create_group(name, track_order=True), value)
        elif isinstance(value, str):
            group.create_dataset(name, data=value, dtype=STR)
        else:
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"state entry {key!r} is {array.dtype}, not a number array")
            options = {"fletcher32": True} if array.ndim and array.size else {}
            group.create_dataset(name, data=array, **options)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a file written by :func:`write_checkpoint`.

    Raises:
        ResultFileError: the file is missing, unreadable, not HDF5, truncated or damaged (checksums), not a
            marketeq checkpoint (a result file, say), of an unsupported schema version, or incomplete.
    """
    return _with_file(path, _read_checkpoint, "checkpoint",
                      "delete it to start the run again from the beginning")


def _read_checkpoint(f: h5py.File, source: Path) -> Checkpoint:
    fmt = _text(f.attrs.get("format", ""))
    if fmt != CHECKPOINT_FORMAT:
        found = "a marketeq result file" if fmt == FORMAT else (
            f"format = {fmt!r}" if fmt else "an HDF5 file without a 'format' attribute")
        raise ResultFileError(source, f"not a marketeq checkpoint ({found})",
                              f"give the {CHECKPOINT_SUFFIX} file that 'marketeq run -o OUTPUT' writes "
                              "beside OUTPUT")
    version = f.attrs.get("schema_version")
    if version is None or not _is_int(version, CHECKPOINT_SCHEMA_VERSION):
        raise ResultFileError(source, f"checkpoint schema_version {_text(version)} is not supported (this "
                                      f"marketeq reads {CHECKPOINT_SCHEMA_VERSION})",
                              "resume with the marketeq version that wrote it, or delete it to start again")
    toml = _required(f, "scenario/toml", source).asstr()[()]
    try:
        scenario = load_scenario(source, text=toml)
    except ScenarioError as exc:
        raise ResultFileError(source, f"its stored scenario is not valid here ({exc})",
                              "resume with the marketeq version that wrote it") from None
    state = _read_tree(_required(f, "state", source))
    for key in ("position", "modules", "history"):
        if key not in state:
            raise ResultFileError(source, f"incomplete checkpoint: /state/{key} is missing",
                                  "delete it to start the run again from the beginning")
    provenance = dict(_plain_attrs(f["provenance"].attrs)) if "provenance" in f else {}
    return Checkpoint(source, scenario, toml, _text(f.attrs.get("solver", "")), provenance, state)


def _read_tree(group: h5py.Group) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, item in group.items():
        key = _unescape(name)
        if isinstance(item, h5py.Group):
            tree[key] = _read_tree(item)
        elif h5py.check_string_dtype(item.dtype) is not None:
            tree[key] = item.asstr()[()]
        else:
            tree[key] = np.asarray(item[()])
    return tree
