"""What every marketeq HDF5 file shares: the format names, the one checked opener, atomic writing, the
escaping of link names and the conversion of attribute values.

Every way a file cannot be read ends in :class:`~marketeq.errors.ResultFileError` (re-exported here), whose
message is one line naming the file, what is wrong with it and what to do. Reading never unpickles: every
value is a plain number, string or array.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np

from marketeq.errors import ResultFileError
from marketeq.files import atomic_path

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_SCHEMA_VERSION", "CHECKPOINT_SUFFIX", "COMPARISON_FORMAT", "FORMAT",
    "READABLE_SCHEMA_VERSIONS", "SCHEMA_VERSION", "STR", "TABLE_FORMAT", "ResultFileError", "attr_value",
    "check_signature", "dataset", "escape", "is_int", "open_checked", "plain", "plain_attrs", "readable_version",
    "required", "text", "unescape",
    "write_atomically",
]

T = TypeVar("T")

FORMAT = "marketeq-result"
COMPARISON_FORMAT = "marketeq-comparison"
# 2: several risky assets, whose path datasets carry asset and factor axes (docs/hdf5.md). A one-asset
# file has the layout of version 1, which is still read.
SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
CHECKPOINT_FORMAT = "marketeq-checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1
CHECKPOINT_SUFFIX = ".ckpt"
TABLE_FORMAT = "marketeq-table"

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
COMPRESS_ABOVE_BYTES = 4096  # smaller arrays gain nothing from gzip and pay a chunk index
COMPRESS: ContextVar[bool] = ContextVar("compress", default=True)  # write_result(compress=...)
# Measured on the E1 oracle paths (B=3000, K=100, N=10, 60.6 MB raw): gzip level 1/4/9 give 51.0/50.6/50.3 MB
# in 0.9/1.0/3.1 s: float64 noise barely compresses, and levels above 4 only cost time.
GZIP_LEVEL = 4
STR = h5py.string_dtype("utf-8")


# --- names -----------------------------------------------------------------------------------------------
# HDF5 link names cannot contain "/" and cannot be "." or empty. History keys are split on "/" into nested
# groups, weight names are kept whole; each component is escaped: "%" -> "%25", "/" -> "%2F", a lone "." ->
# "%2E". Metric names are stored as string data, never as link names, so they need no escaping.


def escape(component: str) -> str:
    if not component:
        raise ValueError("empty name")
    text = component.replace("%", "%25").replace("/", "%2F")
    return "%2E" if text == "." else text


def unescape(component: str) -> str:
    return "." if component == "%2E" else component.replace("%2F", "/").replace("%25", "%")


# --- opening and writing -------------------------------------------------------------------------------


def open_checked(path: str | os.PathLike[str], read: Callable[[h5py.File, Path], T], kind: str = "result",
                 todo: str = "write it again, e.g. by re-running the scenario", what: str | None = None) -> T:
    """Open ``path`` read-only and return ``read(file, path)``, turning every failure into a ResultFileError.

    The one way marketeq opens an HDF5 file. ``kind`` ("result" or "checkpoint") words the errors about a
    missing or foreign file; ``what`` names what failed to read (default: the result file or checkpoint).
    """
    source = Path(path)
    check_signature(source, kind)
    unopened = "checkpoint" if kind == "checkpoint" else "HDF5 file"
    unread = what or ("checkpoint" if kind == "checkpoint" else "result file")
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


def check_signature(source: Path, kind: str = "result") -> None:
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


def write_atomically(target: Path, fill: Callable[[h5py.File], None], edit: bool = False) -> Path:
    """Build the file beside ``target`` with ``fill`` and move it over ``target`` (:func:`atomic_path`).

    With ``edit``, the temporary starts as a copy of ``target`` and ``fill`` changes it in place.

    Raises:
        ResultFileError: the directory is missing, or the file cannot be written (permission, disk full).
    """
    if not target.parent.is_dir():
        raise ResultFileError(target, f"cannot be written: directory {str(target.parent)!r} does not exist",
                              "create it first or choose another location")
    try:
        with atomic_path(target) as tmp:
            if edit:
                shutil.copyfile(target, tmp)
            with h5py.File(tmp, "r+" if edit else "x") as f:
                fill(f)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ResultFileError(target, f"cannot be written ({reason})",
                              "check that the directory exists, is writable and has free space") from exc
    return target


# --- values ----------------------------------------------------------------------------------------------


def attr_value(value: Any) -> Any:
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
        items = [attr_value(v) for v in value]
        if not items:
            return np.zeros(0, dtype=np.int64)
        if all(isinstance(v, str) for v in items):
            return np.array(items, dtype=STR)
        if all(isinstance(v, int | float | np.bool_) for v in items):
            return np.asarray(items)
        if all(isinstance(v, np.ndarray) and v.dtype.kind in "fiub" and v.shape == items[0].shape
               for v in items):
            return np.stack(items)  # a matrix (several assets' A, Lambda): a 2-D attribute
    return repr(value)  # None and anything exotic: informational only, the TOML is authoritative


def dataset(group: h5py.Group, name: str, data: Any, labels: tuple[str, ...] = ()) -> h5py.Dataset:
    array = np.asarray(data)
    big = array.ndim > 0 and array.nbytes > COMPRESS_ABOVE_BYTES and COMPRESS.get()
    options = {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True} if big else {}
    dset = group.create_dataset(name, data=array, **options)
    for dim, label in zip(dset.dims, labels, strict=False):
        dim.label = label
    return dset


def readable_version(value: Any) -> bool:
    """Whether a result or comparison file of this ``schema_version`` attribute can be read."""
    return any(is_int(value, version) for version in READABLE_SCHEMA_VERSIONS)


def is_int(value: Any, expected: int) -> bool:
    try:
        return np.ndim(value) == 0 and int(value) == expected
    except (TypeError, ValueError):
        return False


def required(f: h5py.File, name: str, source: Path) -> Any:
    if name not in f:
        raise ResultFileError(source, f"incomplete result file: /{name} is missing",
                              "write it again, e.g. by re-running the scenario")
    return f[name]


def text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return text(value.item())
    return str(value)


def plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()] if value.dtype.kind in "OS" else value.tolist()
    return value


def plain_attrs(attrs: h5py.AttributeManager) -> Iterator[tuple[str, Any]]:
    for key in attrs:
        yield key, plain(attrs[key])
