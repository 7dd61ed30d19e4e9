"""Many agents in a few lines: ``[[populations]]`` tables and an agents CSV, expanded into ``[[agents]]``.

A population draws ``count`` agents from one seeded generator::

    [[populations]]
    name = "funds"          # optional: the agents are "funds 1", "funds 2", ...
    count = 100
    gamma_range = [1.0, 3.0]  # or gamma = 2.0 for all alike
    gamma_draw = "uniform"  # "uniform", "loguniform" or "even" (evenly spaced, nothing random)
    xi = 0.0                # a number (the mean of the draws, or everybody's xi) or a list of count numbers
    xi_sd = 10.0            # normal draws about xi; 0 (the default) draws nothing
    xi_rule = "centred"     # "centred" subtracts the population's mean; "as-given" keeps the numbers
    lambda = 1e-2           # optional, as in [[agents]]
    seed = 7                # optional; the default is the population's position (0, 1, ...)

``agents_file = "agents.csv"`` (relative to the scenario file) adds one agent per row; columns ``gamma``
and ``xi``, optionally ``lambda`` and ``name``.

**How xi sums to zero.** ``xi_rule = "centred"`` (the default when xi is drawn) makes each population sum
to zero by itself; "as-given" values (constants, lists, the CSV, ``[[agents]]``) must balance one another.
The agents are, in order: the ``[[agents]]`` tables, the file's rows, then each population. The expanded
list is what the scenario holds, so its saved TOML rebuilds the same agents without the draws.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from marketeq.scenario import (
    FiniteFloat,
    Frozen,
    Number,
    PositiveFloat,
    Rule,
    Scenario,
    ScenarioError,
    scenario_error,
)

__all__ = ["Population", "expand_agents", "population_summary"]


class Population(Frozen):
    """``count`` agents with drawn or given risk aversions and exposures (see the module docstring)."""

    toml_section: ClassVar[str] = "in [[populations]]"

    name: str | None = None
    count: Annotated[int, Number, Field(ge=1, le=1000)] = Field(description="number of agents")
    gamma: PositiveFloat | None = Field(None, description="everybody's risk aversion")
    gamma_range: Annotated[list[PositiveFloat], Field(min_length=2, max_length=2)] | None = Field(
        None, description="[low, high] risk aversions to draw from")
    gamma_draw: Literal["uniform", "loguniform", "even"] = "uniform"
    xi: FiniteFloat | list[FiniteFloat] = Field(0.0, description="mean exposure, or one per agent")
    xi_sd: Annotated[float, Number, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="standard deviation of normal draws about xi")
    xi_rule: Literal["centred", "as-given"] | None = None
    lam: PositiveFloat | None = Field(None, alias="lambda", description="the agents' cost scale lambda_n")
    seed: Annotated[int, Number, Field(ge=0, lt=2**63)] | None = None

    @model_validator(mode="after")
    def _one_gamma(self) -> Population:
        if (self.gamma is None) == (self.gamma_range is None):
            raise Rule("gamma", self.gamma, "give exactly one of gamma = number (all alike) or "
                        "gamma_range = [low, high]")
        if self.gamma_range is not None and self.gamma_range[0] > self.gamma_range[1]:
            raise Rule("gamma_range", self.gamma_range, "must be [low, high] with low <= high")
        if isinstance(self.xi, list) and len(self.xi) != self.count:
            raise Rule("xi", self.xi, f"a list needs one number per agent: {self.count} (count), not "
                        f"{len(self.xi)}")
        return self

    @property
    def rule(self) -> str:
        return self.xi_rule or ("centred" if self.xi_sd > 0 else "as-given")

    def agents(self, default_seed: int) -> list[dict[str, Any]]:
        """The population's [[agents]] tables."""
        rng = np.random.default_rng(default_seed if self.seed is None else self.seed)
        n = self.count
        if self.gamma_range is None:
            gamma = np.full(n, float(self.gamma))
        else:
            low, high = self.gamma_range
            gamma = {"uniform": lambda: rng.uniform(low, high, n),
                     "loguniform": lambda: np.exp(rng.uniform(math.log(low), math.log(high), n)),
                     "even": lambda: np.linspace(low, high, n)}[self.gamma_draw]()
        xi = np.array(self.xi, dtype=float) * np.ones(n)
        if self.xi_sd > 0:
            xi = xi + rng.normal(0.0, self.xi_sd, n)
        if self.rule == "centred":
            xi = xi - xi.mean()
        out = []
        for i in range(n):
            agent: dict[str, Any] = {"gamma": float(gamma[i]), "xi": float(xi[i])}
            if self.lam is not None:
                agent["lambda"] = self.lam
            if self.name is not None:
                agent["name"] = f"{self.name} {i + 1}"
            out.append(agent)
        return out


def _population(table: Any, index: int, source: str | None) -> Population:
    try:
        return Population.model_validate(table)
    except ValidationError as exc:
        raise scenario_error(exc, source, Population, f"populations[{index}]") from None


_COLUMNS = ("gamma", "xi", "lambda", "name")


def read_agents_file(path: Path, shown: str, source: str | None) -> list[dict[str, Any]]:
    """[[agents]] tables from a CSV file with a header row (gamma, xi, optionally lambda and name)."""
    def fail(allowed: str) -> ScenarioError:
        return ScenarioError("agents_file", shown, allowed, source)

    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror}); give a path relative to the scenario file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise fail(f"not a UTF-8 CSV file ({exc})") from None
    if not rows:
        raise fail("has no agents; write a header row (gamma,xi[,lambda][,name]) and one row per agent")
    header = [key for key in rows[0] if key is not None]
    extra = [key for key in header if key.strip() not in _COLUMNS]
    missing = [key for key in ("gamma", "xi") if key not in (k.strip() for k in header)]
    if extra or missing:
        problem = f"unknown column {extra[0]!r}" if extra else f"no column {missing[0]!r}"
        raise fail(f"{problem}; the columns are gamma, xi and optionally lambda and name")
    agents = []
    for line, row in enumerate(rows, start=2):
        agent: dict[str, Any] = {}
        for key, text in row.items():
            key = key.strip() if key is not None else None
            if key is None or text is None:
                raise fail(f"line {line} has {'more' if key is None else 'fewer'} cells than the header")
            if key == "name":
                if text.strip():
                    agent["name"] = text.strip()
                continue
            if key == "lambda" and not text.strip():
                continue  # no own cost scale
            try:
                agent[key] = float(text)
            except ValueError:
                raise fail(f"line {line}, column {key}: {text.strip()!r} is not a number") from None
        agents.append(agent)
    return agents


def _balance(agents: list[dict[str, Any]], populations: list[Population], file: str | None,
             source: str | None) -> None:
    xi = [a.get("xi", 0.0) for a in agents if isinstance(a, dict)]
    if not all(isinstance(x, int | float) for x in xi):
        return  # a mistyped xi is the scenario validator's to report
    unit = max([1.0, *(abs(x) for x in xi)])
    total = math.fsum(x / unit for x in xi)
    if abs(total) <= 1e-9 * max(1.0 / unit, math.fsum(abs(x) / unit for x in xi)):
        return
    given = [i for i, p in enumerate(populations) if p.rule == "as-given"]
    field, value = ((f"populations[{given[0]}].xi_rule", "as-given") if given else
                    ("agents_file", file) if file is not None else ("agents.xi", xi))
    raise ScenarioError(field, value,
                        f"the agents' xi sum to {total * unit:.6g}, but they must sum to 0; use xi_rule = "
                        "'centred' (subtracts each population's mean) or balance the given values", source)


def expand_agents(data: dict[str, Any], base: Path, source: str | None = None) -> dict[str, Any]:
    """Scenario data with ``populations`` and ``agents_file`` replaced by the agents they describe.

    ``base`` is the directory the file path is relative to (the scenario file's)."""
    if "populations" not in data and "agents_file" not in data:
        return data
    data = dict(data)
    tables = data.pop("populations", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ScenarioError("populations", tables, "must be an array of tables: write [[populations]] "
                            "(double brackets) once per population", source)
    agents = list(data.get("agents", []))
    file = data.pop("agents_file", None)
    if file is not None:
        if not isinstance(file, str) or not file:
            raise ScenarioError("agents_file", file, "must be the path of a CSV file in quotes", source)
        agents += read_agents_file(base / file, file, source)
    populations = [_population(t, i, source) for i, t in enumerate(tables)]
    for i, population in enumerate(populations):
        agents += population.agents(i)
    _balance(agents, populations, file, source)
    data["agents"] = agents
    return data


def _span(values: list[float], fmt: str = ".3g") -> str:
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if low == high else f"{low:{fmt}}..{high:{fmt}}"


def population_summary(scenario: Scenario) -> str:
    """One line about the agents: count, gamma range, |xi| range (several assets: the largest entry of each
    Xi_n) and lambda(s)."""
    sizes = [float(np.abs(x).max()) for x in scenario.xis]
    lams = _span(scenario.lams) if scenario.n_assets == 1 else str(scenario.frictions.lam)
    return f"{scenario.n_agents} agents: gamma {_span(scenario.gammas)}, |xi| {_span(sizes)}, lambda {lams}"
