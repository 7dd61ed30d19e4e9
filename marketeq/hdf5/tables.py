"""Tables of named columns of equal length (numbers or strings), e.g. a sweep's summary with one row per
trial: root attributes format = "marketeq-table" and schema_version, one dataset per column under /table
(names escaped, the unescaped name kept in the column's "name" attribute), all labelled with the dimension
"row" and attached to the /table/row scale, so pandas and xarray read it without marketeq.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from marketeq.hdf5.files import (
    SCHEMA_VERSION,
    STR,
    TABLE_FORMAT,
    ResultFileError,
    attr_value,
    dataset,
    escape,
    open_checked,
    plain_attrs,
    text,
    unescape,
    write_atomically,
)


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
            f.attrs[key] = attr_value(value)
        g = f.create_group("table", track_order=True)
        row = dataset(g, "row", np.arange(n_rows, dtype=np.int64), ("row",))
        row.make_scale("row")
        for name, values in columns.items():
            array = np.asarray(values)
            if array.dtype.kind in "USO":
                array = np.array([str(v) for v in values], dtype=STR)
            dset = dataset(g, escape(name), array, ("row",))
            dset.attrs["name"] = name
            dset.dims[0].attach_scale(row)

    return write_atomically(target, fill)


def read_table(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(columns, root attributes) of a table written by :func:`write_table`; strings come back as str."""
    def read(f: h5py.File, source: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        fmt = text(f.attrs.get("format", ""))
        if fmt != TABLE_FORMAT:
            raise ResultFileError(source, f"not a marketeq table (format = {fmt!r})",
                                  "give a summary .h5 written by 'marketeq sweep'")
        columns: dict[str, np.ndarray] = {}
        for name, dset in f["table"].items():
            if name == "row":
                continue
            data = dset.asstr()[()] if dset.dtype.kind == "O" else dset[()]
            columns[text(dset.attrs.get("name", unescape(name)))] = np.asarray(data)
        return columns, dict(plain_attrs(f.attrs))

    return open_checked(path, read, todo="write it again by re-running the sweep", what="table")
