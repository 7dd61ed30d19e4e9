"""Checkpoint files: a solver's saved state (:mod:`marketeq.solvers.state`) and the scenario it belongs to.

Nested groups whose datasets are plain arrays, numbers or strings, keyed like the state dict (names escaped
as in result files). Arrays carry a Fletcher-32 checksum, so a damaged file fails to load instead of
resuming from garbage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from marketeq.hdf5.files import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_SCHEMA_VERSION,
    CHECKPOINT_SUFFIX,
    FORMAT,
    STR,
    ResultFileError,
    attr_value,
    escape,
    is_int,
    open_checked,
    plain_attrs,
    required,
    text,
    unescape,
    write_atomically,
)
from marketeq.hdf5.groups import read_scenario, write_provenance

if TYPE_CHECKING:
    from marketeq.scenario import Scenario


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
            f.attrs[key] = attr_value(value)
        f.create_group("scenario").create_dataset("toml", data=scenario_toml, dtype=STR)
        write_provenance(f, provenance)
        _write_tree(f.create_group("state", track_order=True), state)

    return write_atomically(target, fill)


def _write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    for key, value in tree.items():
        name = escape(str(key))
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
    return open_checked(path, _read_checkpoint, "checkpoint",
                        "delete it to start the run again from the beginning")


def _read_checkpoint(f: h5py.File, source: Path) -> Checkpoint:
    fmt = text(f.attrs.get("format", ""))
    if fmt != CHECKPOINT_FORMAT:
        found = "a marketeq result file" if fmt == FORMAT else (
            f"format = {fmt!r}" if fmt else "an HDF5 file without a 'format' attribute")
        raise ResultFileError(source, f"not a marketeq checkpoint ({found})",
                              f"give the {CHECKPOINT_SUFFIX} file that 'marketeq run -o OUTPUT' writes "
                              "beside OUTPUT")
    version = f.attrs.get("schema_version")
    if version is None or not is_int(version, CHECKPOINT_SCHEMA_VERSION):
        raise ResultFileError(source, f"checkpoint schema_version {text(version)} is not supported (this "
                                      f"marketeq reads {CHECKPOINT_SCHEMA_VERSION})",
                              "resume with the marketeq version that wrote it, or delete it to start again")
    scenario, toml = read_scenario(f, source, "resume with the marketeq version that wrote it")
    state = _read_tree(required(f, "state", source))
    for key in ("position", "modules", "history"):
        if key not in state:
            raise ResultFileError(source, f"incomplete checkpoint: /state/{key} is missing",
                                  "delete it to start the run again from the beginning")
    provenance = dict(plain_attrs(f["provenance"].attrs)) if "provenance" in f else {}
    return Checkpoint(source, scenario, toml, text(f.attrs.get("solver", "")), provenance, state)


def _read_tree(group: h5py.Group) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, item in group.items():
        key = unescape(name)
        if isinstance(item, h5py.Group):
            tree[key] = _read_tree(item)
        elif h5py.check_string_dtype(item.dtype) is not None:
            tree[key] = item.asstr()[()]
        else:
            tree[key] = np.asarray(item[()])
    return tree
