"""The groups of a result file (layout in ``docs/hdf5.md``): scenario, provenance, history, paths, metrics
and weights, each written and read here, with labelled dimensions so h5dump, pandas and xarray read them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from marketeq.hdf5.files import (
    STR,
    ResultFileError,
    attr_value,
    dataset,
    escape,
    required,
    unescape,
)
from marketeq.results import Metric, Paths

if TYPE_CHECKING:  # validating a scenario loads pydantic: done only when a reader asks for it
    from marketeq.scenario import Scenario

PATH_FIELDS = tuple(f.name for f in fields(Paths))
# Dimension labels of the path datasets: B paths, K+1 grid times, K Euler steps, N agents.
PATH_DIMS = {"t": ("time",), "W": ("path", "time"), "dW": ("path", "step"), "phi": ("path", "time", "agent"),
             "phidot": ("path", "time", "agent"), "mu": ("path", "time"), "sigma": ("path", "time"),
             "S": ("path", "time")}
# Several assets (schema version 2): W and dW run over the d Brownian factors, the holdings, rates, returns and
# prices over the d assets, and sigma over both (row: asset, column: factor).
ASSET_DIMS = {"t": (), "W": ("factor",), "dW": ("factor",), "phi": ("asset",), "phidot": ("asset",),
              "mu": ("asset",), "sigma": ("asset", "factor"), "S": ("asset",)}
SCENARIO_SECTIONS = ("market", "frictions", "solver", "run")


def history_links(keys: list[str], path: Path) -> dict[str, str]:
    """HDF5 paths (relative to /history) of the history columns, or ResultFileError when two keys collide."""
    links: dict[str, str] = {}
    for key in keys:
        if key == "step":
            continue
        try:
            links[key] = "/".join(escape(part) for part in key.split("/"))
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


def write_scenario(f: h5py.File, scenario: Scenario, toml: str) -> None:
    g = f.create_group("scenario")
    g.create_dataset("toml", data=toml, dtype=STR)
    g.attrs["name"] = scenario.name
    g.attrs["description"] = scenario.description
    g.attrs["n_agents"] = np.int64(scenario.n_agents)
    g.attrs["n_assets"] = np.int64(scenario.n_assets)
    data = scenario.model_dump(by_alias=True)
    for section in SCENARIO_SECTIONS:
        sub = g.create_group(section, track_order=True)
        for key, value in data[section].items():
            sub.attrs[key] = attr_value(value)
    agents = g.create_group("agents", track_order=True)
    agents.create_dataset("gamma", data=np.asarray(scenario.gammas, dtype=np.float64))
    agents.create_dataset("xi", data=np.asarray(scenario.xis, dtype=np.float64))
    agents.create_dataset("name", data=np.array(scenario.agent_names, dtype=STR))
    agents["name"].make_scale("agent")
    for name in ("gamma", "xi", "name"):
        agents[name].dims[0].label = "agent"
        if name != "name":
            agents[name].dims[0].attach_scale(agents["name"])


def write_provenance(f: h5py.File, provenance: Mapping[str, Any]) -> None:
    g = f.create_group("provenance", track_order=True)
    for key, value in provenance.items():
        g.attrs[key] = attr_value(value)


def write_history(f: h5py.File, history: Mapping[str, Any], links: Mapping[str, str]) -> None:
    g = f.create_group("history", track_order=True)
    step = dataset(g, "step", history.get("step", np.zeros(0, dtype=np.int64)), ("step",))
    step.make_scale("step")
    for key, link in links.items():
        *parents, leaf = link.split("/")
        parent = g
        for part in parents:
            parent = parent[part] if part in parent else parent.create_group(part, track_order=True)
        column = dataset(parent, leaf, history[key], ("step",))
        column.dims[0].attach_scale(step)


def write_paths(group: h5py.Group, name: str, paths: Paths, agent_names: list[str]) -> None:
    """The eight Paths fields plus coordinate datasets ``path``, ``step`` and ``agent`` (several assets:
    ``asset`` and ``factor`` too, with the trailing axes of :data:`ASSET_DIMS`).

    Every axis of every field gets a label and a dimension scale (``t`` for the time axis), the netCDF-4 way,
    so xarray (engine h5netcdf) opens the group as a labelled Dataset.
    """
    g = group.create_group(name, track_order=True)
    n_assets = paths.n_assets
    dims = {field: PATH_DIMS[field] + (ASSET_DIMS[field] if n_assets > 1 else ()) for field in PATH_FIELDS}
    for field in PATH_FIELDS:  # one float64 copy at a time: 0.8 GB each for phi and phidot at 1000 agents
        dataset(g, field, np.asarray(getattr(paths, field), dtype=np.float64), dims[field])
    n_paths, n_grid = np.shape(paths.W)[:2]
    n_agents = np.shape(paths.phi)[2]
    names = agent_names if len(agent_names) == n_agents else [f"agent {i + 1}" for i in range(n_agents)]
    scales = {"time": g["t"],
              "path": dataset(g, "path", np.arange(n_paths, dtype=np.int64), ("path",)),
              "step": dataset(g, "step", np.arange(n_grid - 1, dtype=np.int64), ("step",)),
              "agent": g.create_dataset("agent", data=np.array(names, dtype=STR))}
    g["agent"].dims[0].label = "agent"
    if n_assets > 1:
        scales["asset"] = g.create_dataset("asset", data=np.array([f"asset {i + 1}" for i in range(n_assets)],
                                                                  dtype=STR))
        g["asset"].dims[0].label = "asset"
        scales["factor"] = dataset(g, "factor", np.arange(1, n_assets + 1, dtype=np.int64), ("factor",))
    for label, scale in scales.items():
        scale.make_scale(label)
    for field in PATH_FIELDS:
        if field != "t":
            for dim, label in zip(g[field].dims, dims[field], strict=True):
                dim.attach_scale(scales[label])


def write_metrics(f: h5py.File, metrics: Mapping[str, Metric], group: str = "metrics") -> None:
    """Three aligned columns: ``name`` (a dimension scale of strings), ``value`` and ``stderr``."""
    g = f.create_group(group, track_order=True)
    names = g.create_dataset("name", data=np.array(list(metrics), dtype=STR))
    names.make_scale("metric")
    rows = [Metric(*m) for m in metrics.values()]
    for column, index in (("value", 0), ("stderr", 1)):
        dset = g.create_dataset(column, data=np.array([float(m[index]) for m in rows], dtype=np.float64))
        dset.dims[0].label = "metric"
        dset.dims[0].attach_scale(names)
    names.dims[0].label = "metric"


def write_weights(f: h5py.File, weights: Mapping[str, Mapping[str, Any]]) -> None:
    g = f.create_group("weights", track_order=True)
    for net, params in weights.items():
        sub = g.create_group(escape(net), track_order=True)
        for param, value in params.items():
            dataset(sub, escape(param), np.asarray(value))


# --- reading ---------------------------------------------------------------------------------------------


def read_scenario(f: h5py.Group, source: Path, todo: str) -> tuple[Scenario, str]:
    """The stored scenario, re-validated, and its TOML text; ``todo`` says what to do when it is invalid."""
    toml = read_scenario_toml(f, source)
    return validate_scenario(toml, source, todo), toml


def read_scenario_toml(f: h5py.Group, source: Path) -> str:
    return required(f, "scenario/toml", source).asstr()[()]


def validate_scenario(toml: str, source: Path, todo: str) -> Scenario:
    """The scenario of a stored TOML text, or the ResultFileError saying that it is not valid here."""
    from marketeq.scenario import ScenarioError
    from marketeq.scenario_files import load_scenario

    try:
        return load_scenario(source, text=toml)
    except ScenarioError as exc:
        raise ResultFileError(source, f"its stored scenario is not valid here ({exc})", todo) from None


def _datasets(group: h5py.Group, prefix: str = "") -> Iterator[tuple[str, h5py.Dataset]]:
    """(unescaped "a/b" key, dataset) of every dataset below ``group``, in creation order."""
    for name in group:
        item = group[name]
        key = prefix + unescape(name)
        if isinstance(item, h5py.Group):
            yield from _datasets(item, key + "/")
        elif isinstance(item, h5py.Dataset):
            yield key, item


def read_history(g: h5py.Group) -> dict[str, np.ndarray]:
    step = np.asarray(g["step"][()]) if "step" in g else np.zeros(0, dtype=np.int64)
    history: dict[str, np.ndarray] = {"step": step}
    for key, dset in _datasets(g):
        if key != "step":
            history[key] = np.asarray(dset[()])
    return history


def read_paths(f: h5py.File, name: str, source: Path) -> Paths | None:
    if f"paths/{name}" not in f:
        return None
    g = f["paths"][name]
    missing = [field for field in PATH_FIELDS if field not in g]
    if missing:
        raise ResultFileError(source, f"incomplete result file: /paths/{name} lacks {', '.join(missing)}",
                              "write it again, e.g. by re-running the scenario")
    return Paths(**{field: np.asarray(g[field][()], dtype=np.float64) for field in PATH_FIELDS})


def read_metrics(g: h5py.Group) -> dict[str, Metric]:
    names = g["name"].asstr()[()]
    values, stderrs = np.asarray(g["value"][()], np.float64), np.asarray(g["stderr"][()], np.float64)
    if not len(names) == len(values) == len(stderrs):
        raise ValueError(f"/metrics columns differ in length ({len(names)}, {len(values)}, {len(stderrs)})")
    return {str(n): Metric(float(v), float(s)) for n, v, s in zip(names, values, stderrs, strict=True)}


def read_weights(g: h5py.Group) -> dict[str, dict[str, np.ndarray]]:
    return {unescape(net): {unescape(p): np.asarray(d[()]) for p, d in g[net].items()
                             if isinstance(d, h5py.Dataset)}
            for net in g if isinstance(g[net], h5py.Group)}
