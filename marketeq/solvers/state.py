"""A solver's state as plain numpy arrays: networks, optimisers and random generators.

The same plain form serves in-memory roll-backs and checkpoint files (written by ``marketeq.hdf5``), so a
checkpoint never needs pickle: every leaf is a numpy array, a number or a string. Loading copies the arrays
back into the live objects, which keeps their dtype and device.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

State = dict[str, Any]  # nested dicts whose leaves are numpy arrays, numbers or strings


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A CPU copy that later in-place updates of ``tensor`` do not change."""
    return tensor.detach().cpu().numpy().copy()


def module_state(module: nn.Module) -> State:
    return {key: to_numpy(value) for key, value in module.state_dict().items()}


def load_module_state(module: nn.Module, state: Mapping[str, Any]) -> None:
    module.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in state.items()})


def _is_plain(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(isinstance(v, int | float) for v in value)
    return isinstance(value, bool | int | float)


def optimizer_state(optimizer: torch.optim.Optimizer) -> State:
    """Per-parameter tensors (Adam's moments and step) and the numeric settings of each parameter group.

    Settings that are not numbers (``foreach``, ``fused``) come from the optimizer being loaded into.
    """
    saved = optimizer.state_dict()
    state: State = {}
    for index, entries in saved["state"].items():
        for key, value in entries.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {key!r} is a {type(value).__name__}, not a tensor")
        state[str(index)] = {key: to_numpy(value) for key, value in entries.items()}
    groups = {str(g): {key: np.asarray(value) for key, value in group.items()
                       if key != "params" and _is_plain(value)}
              for g, group in enumerate(saved["param_groups"])}
    return {"state": state, "groups": groups}


def _like(template: Any, value: Any) -> Any:
    """``value`` (an array from :func:`optimizer_state`) as the Python type of ``template``."""
    if isinstance(template, bool):
        return bool(value)
    if isinstance(template, int):
        return int(value)
    if isinstance(template, float):
        return float(value)
    if isinstance(template, tuple):
        return tuple(float(v) for v in np.asarray(value).ravel())
    return value


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    template = optimizer.state_dict()
    groups = []
    for g, group in enumerate(template["param_groups"]):
        saved = state["groups"].get(str(g), {})
        groups.append({key: _like(value, saved[key]) if key in saved and key != "params" else value
                       for key, value in group.items()})
    entries = {int(index): {key: torch.from_numpy(np.array(value)) for key, value in values.items()}
               for index, values in state["state"].items()}
    optimizer.load_state_dict({"state": entries, "param_groups": groups})


def global_rng_state(device: torch.device) -> State:
    """torch's (and CUDA's) global generators, which initialise networks, and numpy's and Python's."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: State = {
        "torch": to_numpy(torch.get_rng_state()),
        "numpy": {"kind": str(kind), "keys": np.asarray(keys), "pos": np.int64(pos),
                  "has_gauss": np.int64(has_gauss), "cached_gaussian": np.float64(cached)},
        "python": {"version": np.int64(version), "internal": np.asarray(internal, dtype=np.int64),
                   "gauss_next": np.float64(np.nan if gauss_next is None else gauss_next)},
    }
    if device.type == "cuda":
        state["cuda"] = {str(i): to_numpy(s) for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return state


def load_global_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(torch.from_numpy(np.array(state["torch"])))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.from_numpy(np.array(state["cuda"][str(i)]))
                                      for i in range(len(state["cuda"]))])
    n = state["numpy"]
    np.random.set_state((str(n["kind"]), np.asarray(n["keys"], dtype=np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    p = state["python"]
    gauss = float(p["gauss_next"])
    random.setstate((int(p["version"]), tuple(int(v) for v in np.asarray(p["internal"])),
                     None if np.isnan(gauss) else gauss))
