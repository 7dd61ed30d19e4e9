"""The one way marketeq writes a file: whole or not at all.

Every file the project writes (results, checkpoints, tables, figures, trained RL agents, benchmark records)
goes through :func:`atomic_path`, so a crash, a full disk or a second Ctrl-C never leaves a partial file
where a reader expects a complete one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_bytes_atomically"]


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """A hidden temporary path beside ``target`` to write the whole file to.

    When the block ends without error the file is fsynced and moved over ``target`` with :func:`os.replace`,
    so readers see the old file or the new one, never a partial one; on any error (or interrupt) the
    temporary file is removed and ``target`` is left as it was. ``suffix`` ends the temporary name, for
    writers that pick the format from it (".tmp.zip", ".tmp.npz").
    """
    final = Path(target)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")
    try:
        yield tmp
        with open(tmp, "r+b") as fh:  # the data is on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` with :func:`atomic_path`, creating its directory first."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target
