"""Scenario files: TOML text validated into one frozen, typed scenario object.

Every way a scenario can be wrong ends in :class:`ScenarioError`, whose message is one
line naming the field, the offending value and what is allowed, e.g.
``my.toml: frictions.q = 2.5: must be a number in (1, 2] (cost exponent q; 2 is quadratic)``.

Modules: :mod:`~marketeq.scenario.fields` (typed numbers, the base model, the error),
:mod:`~marketeq.scenario.solver` (the solver settings and the rules tying them to a method),
:mod:`~marketeq.scenario.messages` (errors as one line) and :mod:`~marketeq.scenario.reference` (the
settings reference, docs/scenario.md). Every setting carries its description in the schema.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

import tomli_w
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from marketeq.scenario.assets import (
    MAX_ASSETS,
    AlphaField,
    BetaField,
    CostField,
    SupplyField,
    XiField,
    check_assets,
)
from marketeq.scenario.fields import (
    FiniteFloat,
    Frozen,
    Number,
    PositiveFloat,
    Rule,
    ScenarioError,
    StrictBool,
)
from marketeq.scenario.messages import read_text, scenario_error, toml_error
from marketeq.scenario.solver import ROUNDS_ONLY, RoundPlan, SolverSettings, exact_link, unused_settings

__all__ = [
    "ROUNDS_ONLY",
    "Agent",
    "FiniteFloat",
    "Frictions",
    "Frozen",
    "Market",
    "Number",
    "PositiveFloat",
    "RoundPlan",
    "Rule",
    "RunSettings",
    "Scenario",
    "ScenarioError",
    "SolverSettings",
    "StrictBool",
    "read_text",
    "scenario_error",
    "scenario_to_toml",
    "exact_link",
    "toml_error",
    "unused_settings",
    "validate_data",
]


class Market(Frozen):
    """The exogenous market: terminal price ``S_T = beta*T + alpha*W_T``, supply, horizon, grid."""

    assets: Annotated[int, Number, Field(ge=1, le=MAX_ASSETS)] = Field(
        1, description="number d of risky assets; d > 1 makes alpha the d x d matrix A of S_T = beta T + A W_T, "
                       "beta and supply lists of d numbers and each agent's xi a d x d matrix")
    alpha: AlphaField = Field(description="volatility of the terminal fundamental")
    beta: BetaField = Field(description="drift of the terminal fundamental")
    supply: SupplyField = Field(description="net supply s of the risky asset")
    horizon: PositiveFloat = Field(description="time horizon T")
    steps: Annotated[int, Number, Field(ge=1, le=100_000)] = Field(description="Euler steps K on [0, T]")

    @property
    def dt(self) -> float:
        return self.horizon / self.steps


class Agent(Frozen):
    """One agent: absolute risk aversion ``gamma``, endowment exposure ``xi`` (income loading ``xi*W_t``)."""

    toml_section: ClassVar[str] = "in [[agents]]"  # where an unknown key was found, in error messages

    gamma: PositiveFloat = Field(description="absolute risk aversion")
    xi: XiField = Field(description="endowment exposure; the agents' xi sum to 0")
    lam: PositiveFloat | None = Field(
        None, alias="lambda", description="this agent's cost scale lambda_n; default frictions.lambda")
    name: str | None = Field(None, description="shown in tables and plots; default 'agent N'")


class Frictions(Frozen):
    """Trading cost ``G(x) = (lambda/q)|x|^q`` on the trading rate."""

    lam: Annotated[CostField, Field(alias="lambda")] = Field(
        description="cost scale lambda in G(x) = (lambda/q)|x|^q; 0 is frictionless")
    q: Annotated[float, Number, Field(gt=1, le=2, allow_inf_nan=False)] = Field(
        2.0, description="cost exponent q; 2 is quadratic")


class RunSettings(Frozen):
    """Reproducibility and hardware: seed, test set size, dtype and device."""

    seed: Annotated[int, Number, Field(ge=0, lt=2**63)] = Field(
        0, description="seeds the training noise, the networks and the test set")
    test_paths: Annotated[int, Number, Field(ge=2, le=10_000_000)] = Field(
        3000, description="paths of the seeded test set that the metrics are computed on")
    dtype: Literal["float32", "float64"] = Field("float32", description="floating-point precision of the run")
    device: Literal["cpu", "cuda", "auto"] = Field(
        "auto", description="where torch computes; auto: cuda when available, else cpu")


class Scenario(Frozen):
    """A complete, validated scenario: market, agents, frictions, solver and run settings."""

    toml_section: ClassVar[str] = "at the top level"

    name: str = Field("scenario", description="names the result files and the tables")
    description: str = Field("", description="one line for people")
    market: Market
    agents: Annotated[list[Agent], Field(min_length=2, max_length=1000)]
    frictions: Frictions
    solver: SolverSettings = SolverSettings()
    run: RunSettings = RunSettings()

    @field_validator("agents")
    @classmethod
    def _exposures_sum_to_zero(cls, agents: list[Agent]) -> list[Agent]:
        if any(isinstance(a.xi, list) for a in agents):
            return agents  # several assets' matrices: summed in marketeq.scenario.assets
        # In units of the largest exposure, so that sums near the float limit cannot overflow.
        unit = max(1.0, max((abs(a.xi) for a in agents), default=0.0))
        total = math.fsum(a.xi / unit for a in agents)
        scale = max(1.0 / unit, math.fsum(abs(a.xi) / unit for a in agents))
        if abs(total) > 1e-9 * scale:
            total *= unit
            raise Rule(
                "agents.xi", [a.xi for a in agents],
                f"they sum to {total:.6g}, but the endowment exposures xi must sum to 0 "
                "(the frictionless market clears with a constant return only then)",
            )
        return agents

    @model_validator(mode="after")
    def _shapes_fit_the_assets(self) -> Scenario:
        check_assets(self)
        return self

    @model_validator(mode="after")
    def _known_mu_needs_identity(self) -> Scenario:
        if self.solver.mu_source == "known" and self.frictions.q != 2 and self.n_agents > 2:
            raise Rule(
                "solver.mu_mode", "known",
                f"needs q = 2 or exactly 2 agents (the return identity), but q = {self.frictions.q:g} "
                f"with {self.n_agents} agents; use mu_mode = 'learned' or 'implied'",
            )
        if self.solver.mu_source == "implied" and self.solver.method != "rlink":
            raise Rule("solver.mu_mode", "implied",
                        f"is a mode of the reinforcement-link solver, not of method '{self.solver.method}'; "
                        "use mu_mode = 'learned' or method = 'rlink'")
        return self

    @model_validator(mode="after")
    def _no_silent_settings(self) -> Scenario:
        """A setting that the method or mode never reads is refused, not ignored."""
        for name, why in unused_settings(self.solver, self.frictions.q).items():
            value = getattr(self.solver, name)
            default = SolverSettings.model_fields[name].default
            hint = "" if "; " in why else f"; remove it (default {default!r})"
            raise Rule(f"solver.{name}", value, f"is not used: {why}{hint}")
        return self

    @model_validator(mode="after")
    def _costs_all_on_or_all_off(self) -> Scenario:
        if self.frictions.lam == 0:
            for i, agent in enumerate(self.agents):
                if agent.lam is not None:
                    raise Rule(f"agents[{i}].lambda", agent.lam,
                                "an agent's own cost needs frictions.lambda > 0 too (a market where some "
                                "agents trade for free has no equilibrium with costs); set frictions.lambda")
        return self

    @property
    def n_assets(self) -> int:
        return self.market.assets

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def gammas(self) -> list[float]:
        return [a.gamma for a in self.agents]

    @property
    def xis(self) -> list[float]:
        return [a.xi for a in self.agents]

    @property
    def lams(self) -> list[float]:
        """Each agent's cost scale: its own lambda, else frictions.lambda."""
        return [self.frictions.lam if a.lam is None else a.lam for a in self.agents]

    @property
    def agent_names(self) -> list[str]:
        return [a.name or f"agent {i + 1}" for i, a in enumerate(self.agents)]

    def replace(self, **changes: Any) -> Scenario:
        """A validated copy with top-level sections or dotted fields replaced, e.g. ``{"run.seed": 3}``.

        Keys are written as in TOML and in error messages: ``"frictions.lambda"`` (``"frictions.lam"``
        works too), ``"agents[1].gamma"``; values may be plain data or scenario models.
        """
        data = self.model_dump(by_alias=True)
        for key, value in changes.items():
            parts: list[str | int] = [int(p) if p.isdigit() else _ALIASES.get(p, p)
                                      for p in re.findall(r"[^.\[\]]+", key)]
            target: Any = data
            for part in parts[:-1]:
                try:
                    target = target[part]
                except (KeyError, IndexError, TypeError):
                    raise ScenarioError(key, value, f"no such field in the scenario (at {part!r}); give a "
                                        "dotted path such as 'run.seed' or 'agents[0].gamma'") from None
            if not parts or not isinstance(target, dict | list):
                raise ScenarioError(key, value, "not a field path; give e.g. 'run.seed' or 'agents[0].gamma'")
            try:
                target[parts[-1]] = _plain(value)
            except (IndexError, TypeError):
                raise ScenarioError(key, value, f"no such entry (there are {len(target)} agents)") from None
        return validate_data(data, source=None)

    def one_asset(self, i: int) -> Scenario:
        """Asset ``i`` (0-based) of a separable several-asset scenario (diagonal ``alpha``, costs and ``xi``) as
        a one-asset scenario of its own."""
        m = self.market
        data = self.model_dump(by_alias=True)
        data["market"].update(assets=1, alpha=m.alpha[i][i], beta=m.beta[i], supply=m.supply[i])
        data["frictions"]["lambda"] = self.frictions.lam[i]
        for agent in data["agents"]:
            agent["xi"] = agent["xi"][i][i]
        return validate_data(data, source=None)

    def with_method(self, **changes: Any) -> Scenario:
        """:meth:`replace` for a switch of method or mode (``{"solver.method": "fbsde"}``): the solver
        settings that the new method or mode never reads go back to their defaults instead of being
        refused."""
        solver = {key.removeprefix("solver."): value for key, value in changes.items()
                  if key.startswith("solver.")}
        try:
            settings = SolverSettings.model_validate({**self.solver.model_dump(), **solver})
        except ValidationError:
            return self.replace(**changes)  # the error, as replace words it
        q = changes.get("frictions.q", self.frictions.q)
        defaults = {f"solver.{name}": SolverSettings.model_fields[name].default
                    for name in unused_settings(settings, q)}
        return self.replace(**{**changes, **defaults})


_ALIASES = {"lam": "lambda"}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def validate_data(data: Any, source: str | None) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise scenario_error(exc, source, Scenario) from None


def scenario_to_toml(scenario: Scenario) -> str:
    """TOML text that :func:`load_scenario` turns back into an equal scenario."""
    data = scenario.model_dump(by_alias=True, exclude_none=True)
    return tomli_w.dumps(data)
