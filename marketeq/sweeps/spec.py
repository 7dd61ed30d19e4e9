"""Sweep files: a base scenario, the parameters to vary, seeds and methods, expanded into trials.

A sweep file is TOML::

    name = "lambda_quadratic"
    base = "../paper_e1_quadratic_10_agents.toml"   # relative to this file; or an inline [base] table
    seeds = [0]                                       # run.seed of every trial (default: the base's)
    [set]                                             # changes to the base for every trial
    "run.test_paths" = 1000

    [[group]]                                         # one block of trials; several may follow
    methods = ["oracle"]                              # "rlink", "joint", "fbsde", "oracle", at every point
    grid = { "frictions.lambda" = { start = 1e-4, stop = 1e-1, num = 13, spacing = "log" } }

A parameter is a scenario field by dotted path as in :meth:`Scenario.replace` (``frictions.lambda``,
``agents[0].gamma``) or a derived one (:data:`DERIVED`). ``grid`` takes the Cartesian product of its
parameters; ``zip`` pairs its parameters' values (equal lengths) and is crossed with the grid.

Every way a sweep file can be wrong ends in :class:`SweepError`, one line like a scenario error.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marketeq import Scenario, ScenarioError, load_scenario, reference_name, scenario_to_toml
from marketeq.methods import ORACLE, SOLVERS
from marketeq.scenario import toml_error  # the scenario files' wording of TOML syntax errors

# The method vocabulary (marketeq.methods): a solver method, or the oracle. "solver", an earlier name, is the
# base scenario's own solver.method.
Method = Literal["rlink", "joint", "fbsde", "oracle", "solver"]
METHODS: tuple[str, ...] = (*SOLVERS, ORACLE)


class SweepError(ScenarioError):
    """A sweep that cannot be run; ``str()`` is one line naming field, value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str, source: str | None = None,
                 missing: bool = False) -> None:
        self.field, self.value, self.allowed, self.source = field, value, allowed, source
        where = f"{source}: " if source else ""
        head = f"{field} is missing" if missing else f"{field} = {_short(value)}"
        ValueError.__init__(self, " ".join(f"{where}{head}: {allowed}".split()))


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- derived parameters --------------------------------------------------------------------------------

def _xi_scale(scenario: Scenario, factor: float) -> Scenario:
    """Every agent's xi times ``factor`` (the xi still sum to 0)."""
    scaled = (lambda xi: (np.asarray(xi) * factor).tolist())  # noqa: E731 - a number, or an asset matrix
    return scenario.replace(**{f"agents[{i}].xi": scaled(a.xi) for i, a in enumerate(scenario.agents)})


def _gamma_spread(scenario: Scenario, spread: float) -> Scenario:
    """gamma_n stretched about their mean so that max - min = ``spread`` (0: all equal the mean)."""
    gammas = np.asarray(scenario.gammas)
    mean, width = gammas.mean(), gammas.max() - gammas.min()
    if width == 0 and spread != 0:
        raise ScenarioError("gamma_spread", spread, "the base agents all have the same gamma, so there is "
                                                    "no spread to stretch; vary agents[i].gamma instead")
    new = mean + (gammas - mean) * (spread / width if width else 0.0)
    return scenario.replace(**{f"agents[{i}].gamma": float(g) for i, g in enumerate(new)})


def _horizon(scenario: Scenario, horizon: float) -> Scenario:
    return scenario.replace(**{"market.horizon": horizon})


# Parameters that are not one scenario field. T keeps the number of steps (so dt = T/K changes).
DERIVED: dict[str, tuple[Callable[[Scenario, Any], Scenario], str]] = {
    "xi_scale": (_xi_scale, "multiplies every agent's xi"),
    "gamma_spread": (_gamma_spread, "sets max(gamma) - min(gamma), keeping the mean gamma"),
    "T": (_horizon, "the horizon market.horizon, keeping market.steps"),
}


def apply_parameter(scenario: Scenario, name: str, value: Any) -> Scenario:
    """The scenario with one sweep parameter (a dotted field path or a derived name) set to ``value``."""
    if name in DERIVED:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(name, value, f"must be a number ({DERIVED[name][1]})")
        return DERIVED[name][0](scenario, value)
    return scenario.replace(**{name: value})


# --- the file's structure ------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Seeds = Annotated[list[Annotated[int, Field(ge=0, lt=2**63)]], Field(min_length=1)]


class Group(_Strict):
    """A block of trials: every point of its grid, for each seed, for each method."""

    methods: list[Method] = Field(["solver"], min_length=1)  # default: the base's own method
    grid: dict[str, Any] = {}
    zipped: dict[str, Any] = Field({}, alias="zip")
    seeds: Seeds | None = None
    changes: dict[str, Any] = Field({}, alias="set")


class SweepFile(_Strict):
    name: str | None = None
    description: str = ""
    base: str | dict[str, Any]
    seeds: Seeds | None = None
    changes: dict[str, Any] = Field({}, alias="set")
    group: list[Group] = Field(min_length=1)


_KEYS = {SweepFile: ("name", "description", "base", "seeds", "set", "[[group]]"),
         Group: ("methods", "grid", "zip", "seeds", "set")}


def _loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in ("str", "dict[str,any]"):
            text += ("." if text else "") + str(part)
    return text or "sweep"


def _explain(error: dict[str, Any], source: str) -> SweepError:
    loc, kind, value = error["loc"], error["type"], error.get("input")
    field = _loc(loc)
    if kind == "extra_forbidden":
        keys = _KEYS[Group] if "group" in loc[:-1] else _KEYS[SweepFile]
        close = difflib.get_close_matches(str(loc[-1]), [k.strip("[]") for k in keys], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = "in [[group]]" if "group" in loc[:-1] else "at the top level"
        return SweepError(field, value, f"unknown key {where}; allowed: {', '.join(keys)}{hint}", source)
    if kind == "missing":
        what = {"base": "a scenario file path (relative to the sweep file) or an inline [base] table",
                "group": "at least one [[group]] table (methods, grid, zip, seeds, set)"}
        return SweepError(field, None, f"required; add {what.get(str(loc[-1]), 'it')}", source, missing=True)
    if field == "base":
        return SweepError(field, value, "must be a scenario file path in quotes or a [base] table", source)
    message = error["msg"].replace("Input should be", "must be").replace("Value should", "must")
    choices = ", ".join(repr(m) for m in METHODS)
    if loc[-1] == "methods":
        message = f"must be a non-empty list drawn from {choices}"
    elif "methods" in loc:
        message = f"must be one of {choices}"
    elif loc[-1] in ("grid", "zip", "set"):
        message = "must be a table of parameter = values, e.g. { \"frictions.lambda\" = [1e-3, 1e-2] }"
    elif "seeds" in loc:
        message = "must be a non-empty list of integer seeds >= 0 (each trial's run.seed)"
    return SweepError(field, value, message[:1].lower() + message[1:], source)


# --- values of one parameter -----------------------------------------------------------------------------

_SPAN_KEYS = ("start", "stop", "num", "spacing")


def parameter_values(field: str, raw: Any, source: str) -> list[Any]:
    """A list of values, or a range table ``{start, stop, num, spacing = "linear" | "log"}``, as a list."""
    if isinstance(raw, list):
        if not raw or any(isinstance(v, list | dict) for v in raw):
            raise SweepError(field, raw, "must be a non-empty list of single values", source)
        return raw
    if not isinstance(raw, dict):
        raise SweepError(field, raw, "must be a list of values or a range table { start = ..., stop = ..., "
                                     "num = ..., spacing = 'linear' | 'log' }", source)
    unknown = sorted(set(raw) - set(_SPAN_KEYS))
    if unknown:
        raise SweepError(f"{field}.{unknown[0]}", raw[unknown[0]],
                         f"unknown key in a range table; allowed: {', '.join(_SPAN_KEYS)}", source)
    for key in ("start", "stop"):
        if key not in raw:
            raise SweepError(f"{field}.{key}", None, "required; add a number", source, missing=True)
        if isinstance(raw[key], bool) or not isinstance(raw[key], int | float) or not math.isfinite(raw[key]):
            raise SweepError(f"{field}.{key}", raw[key], "must be a finite number", source)
    num, spacing = raw.get("num", 2), raw.get("spacing", "linear")
    if isinstance(num, bool) or not isinstance(num, int) or not 2 <= num <= 100_000:
        raise SweepError(f"{field}.num", num, "must be an integer in [2, 100000] (the number of values)",
                         source)
    if spacing not in ("linear", "log"):
        raise SweepError(f"{field}.spacing", spacing, "must be one of 'linear', 'log'", source)
    start, stop = float(raw["start"]), float(raw["stop"])
    if spacing == "log":
        if start <= 0 or stop <= 0:
            raise SweepError(f"{field}.start", start, "a log range needs start > 0 and stop > 0", source)
        return [float(v) for v in np.geomspace(start, stop, num)]
    return [float(v) for v in np.linspace(start, stop, num)]


def _points(group: Group, where: str, source: str) -> list[tuple[tuple[str, Any], ...]]:
    """The group's points as ((name, value), ...) in grid-then-zip order."""
    axes: list[list[tuple[tuple[str, Any], ...]]] = []
    for name, raw in group.grid.items():
        axes.append([((name, v),) for v in parameter_values(f"{where}.grid.{name}", raw, source)])
    if group.zipped:
        columns = {n: parameter_values(f"{where}.zip.{n}", raw, source) for n, raw in group.zipped.items()}
        lengths = {n: len(v) for n, v in columns.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{n}: {k}" for n, k in lengths.items())
            raise SweepError(f"{where}.zip", list(lengths), f"paired parameters need as many values each "
                                                            f"({shown}); use grid for a product", source)
        axes.append([tuple(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)])
    duplicated = set(group.grid) & set(group.zipped)
    if duplicated:
        name = sorted(duplicated)[0]
        raise SweepError(f"{where}.zip.{name}", group.zipped[name], "is also in grid; give it once", source)
    return [tuple(itertools.chain.from_iterable(parts)) for parts in itertools.product(*axes)]


# --- trials --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trial:
    """One run: a method on one scenario. Plain data (the scenario as TOML text), so it pickles anywhere."""

    index: int
    group: int
    method: str
    seed: int
    params: tuple[tuple[str, Any], ...]
    scenario_toml: str

    @property
    def key(self) -> str:
        """Content hash of method and scenario: the same trial keeps its file when the sweep file changes."""
        return hashlib.sha256(f"{self.method}\n{self.scenario_toml}".encode()).hexdigest()[:12]

    @property
    def filename(self) -> str:
        return f"{self.method}-{self.key}.h5"

    def scenario(self) -> Scenario:
        return load_scenario(f"trial {self.index}", text=self.scenario_toml)


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: its trials in file order and the names of the parameters it varies."""

    name: str
    description: str
    source: str
    text: str
    parameters: tuple[str, ...]
    trials: tuple[Trial, ...]


def _read(path: Path) -> str:
    name = str(path)
    if path.is_dir():
        raise SweepError("file", name, "is a directory; give the path of a sweep .toml file")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError("file", name, "no such sweep file; give the path of a .toml file") from None
    except UnicodeDecodeError:
        raise SweepError("file", name, "not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise SweepError("file", name, f"cannot be read ({exc.strerror})") from None


def _base(spec: SweepFile, folder: Path, source: str) -> Scenario:
    if isinstance(spec.base, dict):
        return load_scenario(f"{source} [base]", text=tomli_w.dumps(spec.base))
    path = folder / spec.base
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        if exc.field != "file":
            raise
        raise SweepError("base", spec.base, f"{exc.allowed} (looked for {path})", source) from None


def _apply_all(scenario: Scenario, changes: dict[str, Any] | tuple[tuple[str, Any], ...], where: str,
               source: str) -> Scenario:
    for name, value in (changes.items() if isinstance(changes, dict) else changes):
        try:
            scenario = apply_parameter(scenario, name, value)
        except ScenarioError as exc:
            inner = f"{exc.field} = {_short(exc.value)}: " if exc.field != name else ""
            raise SweepError(f"{where}.{name}", value, inner + exc.allowed, source) from None
    return scenario


def _group_trials(group: Group, index: int, base: Scenario, default_seeds: list[int], source: str,
                  start: int) -> list[Trial]:
    where = f"group[{index}]"
    base = _apply_all(base, group.changes, f"{where}.set", source)
    trials = []
    for point in _points(group, where, source):
        kinds = {name: "grid" if name in group.grid else "zip" for name, _ in point}
        scenario = base
        for name, value in point:
            scenario = _apply_all(scenario, ((name, value),), f"{where}.{kinds[name]}", source)
        for seed in group.seeds or default_seeds:
            seeded = _apply_all(scenario, (("run.seed", seed),), f"{where}.seeds", source)
            for method in dict.fromkeys(seeded.solver.method if m == "solver" else m for m in group.methods):
                if method == ORACLE and reference_name(seeded) is None:
                    shown = ", ".join(f"{n} = {v!r}" for n, v in point)
                    raise SweepError(f"{where}.methods", "oracle",
                                     f"no oracle at {shown or 'the base'} (q = {seeded.frictions.q:g}, "
                                     f"{seeded.n_agents} agents); oracles exist for q = 2 or lambda = 0, and "
                                     "approximately for two agents: use a solver method there, e.g. "
                                     "methods = ['rlink']", source)
                toml = scenario_to_toml(seeded if method == ORACLE else
                                        _with_method(seeded, method, f"{where}.methods", source))
                trials.append(Trial(start + len(trials), index, method, seed, point, toml))
    return trials


def _with_method(scenario: Scenario, method: str, where: str, source: str) -> Scenario:
    """The trial's scenario solved by ``method``; settings the method never reads go back to defaults."""
    try:
        return scenario.with_method(**{"solver.method": method})
    except ScenarioError as exc:
        raise SweepError(where, method, f"does not apply here: {exc}", source) from None


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file and expand it into trials (every trial's scenario is validated)."""
    path = Path(path)
    source = str(path)
    text = _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        error = toml_error(exc, text, source)
        raise SweepError(error.field, error.value, error.allowed, source) from None
    try:
        spec = SweepFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)  # a misspelt key explains a missing one: report it first
        raise _explain(min(errors, key=lambda e: e["type"] != "extra_forbidden"), source) from None
    base = _apply_all(_base(spec, path.parent, source), spec.changes, "set", source)
    seeds = spec.seeds or [base.run.seed]
    trials: list[Trial] = []
    for index, group in enumerate(spec.group):
        trials += _group_trials(group, index, base, seeds, source, len(trials))
    unique: dict[str, Trial] = {}
    for trial in trials:  # a trial listed twice runs once (one writer per file)
        unique.setdefault(trial.filename, trial)
    trials = [Trial(i, t.group, t.method, t.seed, t.params, t.scenario_toml)
              for i, t in enumerate(unique.values())]
    names = tuple(dict.fromkeys(name for t in trials for name, _ in t.params))
    return Sweep(spec.name or path.stem, spec.description, source, text, names, tuple(trials))
