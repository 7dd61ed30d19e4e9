"""Result, checkpoint, gap and table files: self-describing HDF5, one module per file concern.

The only package of marketeq that imports h5py, and it needs no torch (a contract in ``.importlinter``), so
reading and showing a result stays light. The layout is documented in ``docs/hdf5.md`` and is readable with
plain h5py, h5dump, pandas or xarray. Every file is written atomically (:func:`marketeq.files.atomic_path`)
and opened through one checked opener (:func:`marketeq.hdf5.files.open_checked`); reading never unpickles.

Modules: :mod:`~marketeq.hdf5.files` (what every file shares), :mod:`~marketeq.hdf5.groups` (the groups of a
result), :mod:`~marketeq.hdf5.results`, :mod:`~marketeq.hdf5.checkpoints`, :mod:`~marketeq.hdf5.gap` and
:mod:`~marketeq.hdf5.tables`.
"""

from marketeq.hdf5.checkpoints import Checkpoint, checkpoint_path, read_checkpoint, write_checkpoint
from marketeq.hdf5.files import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_SUFFIX,
    COMPARISON_FORMAT,
    FORMAT,
    SCHEMA_VERSION,
    TABLE_FORMAT,
    ResultFileError,
)
from marketeq.hdf5.gap import read_gap, write_gap
from marketeq.hdf5.groups import PATH_FIELDS
from marketeq.hdf5.results import read_comparison, read_result, write_comparison, write_result
from marketeq.hdf5.tables import read_table, write_table

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_SUFFIX", "COMPARISON_FORMAT", "FORMAT", "PATH_FIELDS",
           "SCHEMA_VERSION", "TABLE_FORMAT", "Checkpoint", "ResultFileError", "checkpoint_path",
           "read_checkpoint", "read_comparison", "read_gap", "read_result", "read_table", "write_checkpoint",
           "write_comparison", "write_gap", "write_result", "write_table"]
