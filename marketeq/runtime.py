"""Device, dtype, seeding and provenance: everything a result needs to be reproduced."""

from __future__ import annotations

import contextlib
import platform
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

import numpy as np
import torch

from marketeq.errors import DeviceUnavailable

__all__ = ["Runtime", "provenance", "resolve_device", "seed_everything", "torch_threads"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available) as a torch device; cuda without a GPU is an
    error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device = 'cuda' but no CUDA device is available; use --device cpu or auto")
    if name not in {"cpu", "cuda"}:
        raise ValueError(f"device = {name!r}: use cpu, cuda or auto")
    return torch.device(name)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch and BLAS limited to ``count`` intra-op threads inside the block.

    Work made of many small tensor operations runs fastest on one thread: the second thread's hand-offs cost
    more than it computes, and on cores shared with other processes far more (measured: one evaluation of the
    adaptive schedule's agents' objective 10 ms on one thread, 1.2 s on two while the two cores were busy).
    """
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a CPU generator for explicit draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes."""

    device: torch.device
    dtype: torch.dtype
    seed: int

    @classmethod
    def from_settings(cls, device: str, dtype: str, seed: int) -> Runtime:
        return cls(resolve_device(device), _DTYPES[dtype], seed)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def provenance(runtime: Runtime) -> dict[str, str | int]:
    """Seed, device, dtype, versions and time: stored with every result."""
    from marketeq import __version__

    device = str(runtime.device)
    if runtime.device.type == "cuda":
        device += f" ({torch.cuda.get_device_name(runtime.device)})"
    return {
        "seed": runtime.seed,
        "device": device,
        "dtype": runtime.dtype_name,
        "marketeq": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "h5py": _version("h5py"),
        "torch_threads": torch.get_num_threads(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
