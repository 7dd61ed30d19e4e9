"""Scenario files: TOML text validated into one frozen, typed scenario object.

Every way a scenario can be wrong ends in :class:`ScenarioError`, whose message is one
line naming the field, the offending value and what is allowed, e.g.
``my.toml: frictions.q = 2.5: must be a number in (1, 2] (cost exponent q; 2 is quadratic)``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import tomli_w
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

__all__ = [
    "Agent",
    "Frictions",
    "Market",
    "RunSettings",
    "Scenario",
    "ScenarioError",
    "SolverSettings",
    "scenario_to_toml",
    "toml_error",
]


def _no_text_for_numbers(value: Any) -> Any:
    """TOML is typed: a quoted ``"1.0"`` or a ``true`` is not a number, even where Python could coerce it."""
    if isinstance(value, str | bytes | bool):
        raise PydanticCustomError("number_type", "must be a number, not {kind}",
                                  {"kind": "true/false" if isinstance(value, bool) else "text"})
    return value


Number = BeforeValidator(_no_text_for_numbers)
PositiveFloat = Annotated[float, Number, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Number, Field(allow_inf_nan=False)]
StrictBool = Annotated[bool, Field(strict=True)]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``str()`` is one line naming field, value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str, source: str | None = None) -> None:
        self.field, self.value, self.allowed, self.source = field, value, allowed, source
        where = f"{source}: " if source else ""
        shown = _short(value, limit=None if field == "file" else 60)  # a path is never cut short
        head = f"{field} is missing" if value is _MISSING else f"{field} = {shown}"
        super().__init__(" ".join(f"{where}{head}: {allowed}".split()))


class _Shown(str):
    """A value already written for people (``1 agent``): shown as is, without quotes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _short(value: Any, limit: int | None = 60) -> str:
    if isinstance(value, bool):
        return str(value).lower()  # as written in TOML
    text = repr(value) if not isinstance(value, str) or value else "''"
    text = " ".join(text.split())
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


class Rule(ValueError):
    """A rule across fields, raised inside pydantic and reported as a :class:`ScenarioError` of its field."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field} = {_short(value)}: {allowed}")


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=False)


class Market(Frozen):
    """The exogenous market: terminal price ``S_T = beta*T + alpha*W_T``, supply, horizon, grid."""

    alpha: PositiveFloat = Field(description="volatility of the terminal fundamental")
    beta: FiniteFloat = Field(description="drift of the terminal fundamental")
    supply: PositiveFloat = Field(description="net supply s of the risky asset")
    horizon: PositiveFloat = Field(description="time horizon T")
    steps: Annotated[int, Number, Field(ge=1, le=100_000)] = Field(description="Euler steps K on [0, T]")

    @property
    def dt(self) -> float:
        return self.horizon / self.steps


class Agent(Frozen):
    """One agent: absolute risk aversion ``gamma``, endowment exposure ``xi`` (income loading ``xi*W_t``)."""

    gamma: PositiveFloat = Field(description="absolute risk aversion")
    xi: FiniteFloat = Field(description="endowment exposure; the agents' xi sum to 0")
    lam: PositiveFloat | None = Field(
        None, alias="lambda", description="this agent's cost scale lambda_n; default frictions.lambda")
    name: str | None = None


class Frictions(Frozen):
    """Trading cost ``G(x) = (lambda/q)|x|^q`` on the trading rate."""

    lam: Annotated[float, Number, Field(ge=0, allow_inf_nan=False, alias="lambda")] = Field(
        description="cost scale lambda in G(x) = (lambda/q)|x|^q; 0 is frictionless")
    q: Annotated[float, Number, Field(gt=1, le=2, allow_inf_nan=False)] = Field(
        2.0, description="cost exponent q; 2 is quadratic")


IntList = Annotated[list[Annotated[int, Number, Field(ge=0)]], Field(min_length=1)]
RateList = Annotated[
    list[Annotated[float, Number, Field(gt=0, le=10, allow_inf_nan=False)]], Field(min_length=1)
]
HiddenList = Annotated[list[Annotated[int, Number, Field(ge=1, le=4096)]], Field(max_length=16)]
WeightList = Annotated[
    list[Annotated[float, Number, Field(ge=0, allow_inf_nan=False)]], Field(min_length=1)
]


class RoundPlan(NamedTuple):
    """What one round of the alternation does."""

    agents_iterations: int
    market_iterations: int
    agents_lr: float
    market_lr: float
    clearing_weight: float


class SolverSettings(Frozen):
    """Training schedule and networks. Per-round lists repeat their last entry for later rounds."""

    method: Literal["rlink", "combo", "fbsde"] = Field(
        "rlink", description="rlink: the reinforcement-link solver; combo (joint training) and fbsde (deep "
                             "FBSDE): the baselines it is compared with")
    schedule: Literal["rounds", "adaptive"] = Field(
        "rounds", description="rounds: the fixed schedule of per-round iterations and learning rates below; "
                              "adaptive (rlink only, experimental): rounds until the equilibrium residuals fall "
                              "below the tolerance or the budget is spent")
    tolerance: Annotated[float, Number, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        2e-4, description="adaptive schedule: stop when the round-to-round change of sigma_t and mu_t (relative), "
                          "the normalised terminal error and the link residual (implied clearing) "
                          "are all below this")
    max_rounds: Annotated[int, Number, Field(ge=1, le=10_000)] = Field(
        50, description="adaptive schedule: rounds at most before the run ends as budget_exhausted")
    max_minutes: Annotated[float, Number, Field(gt=0, allow_inf_nan=False)] = Field(
        30.0, description="adaptive schedule: training minutes at most before the run ends as budget_exhausted")
    rounds: Annotated[int, Number, Field(ge=1, le=10_000)] = Field(
        10, description="rounds schedule: rounds of agents' then market training")
    mu_mode: Literal["learned", "known", "implied"] = Field(
        "learned", description="learned (rounds schedule): a mu network tied to the agents by the link; known: "
                               "the return identity (q = 2 or N = 2); implied (the adaptive schedule's default): "
                               "mu is the link solved exactly on the agents' roll-out")
    warm_start: StrictBool = Field(True, description="rounds schedule: each round continues from the last one's "
                                                     "networks instead of fresh ones")
    batch_size: Annotated[int, Number, Field(ge=2, le=1_000_000)] = Field(
        512, description="paths per agents' iteration (rounds schedule, default 512); adaptive schedule: the "
                         "fixed training paths the agents' problem is solved on (default 2048)")
    market_batch_size: Annotated[int, Number, Field(ge=2, le=1_000_000)] = 4096
    agents_iterations: IntList = [300]
    market_iterations: IntList = [300]
    agents_lr: RateList = [1e-3]
    market_lr: RateList = [1e-3]
    agents_hidden: HiddenList = [64, 64]
    market_hidden: HiddenList = [64, 64]
    # Per round, like the schedule: a weak penalty while the market is far off (a strong one makes the
    # agents' phase stiff), a strong one at the end, when best responses nearly clear anyway.
    clearing_weight: WeightList = [1.0]
    # Within each phase: "constant" keeps the round's learning rates; "cosine" lowers them along a half
    # cosine to 1% at the phase's end, so that each phase ends settled rather than at Adam's noise level
    # (measured on E3: agents' phases at a constant rate left best responses and clearing noisy). It applies
    # to the solvers' own optimisers; a stable-baselines3 agents' learner keeps its constant rate.
    lr_decay: Literal["constant", "cosine"] = "constant"
    eval_every: Annotated[int, Number, Field(ge=1)] = 50
    # MLP correction on top of the time-dependent linear feedback, in the policy and in mu; "auto" uses
    # it only for power costs (q < 2), where the equilibrium is nonlinear in the state.
    nonlinear: Literal["auto", "on", "off"] = "auto"
    # How the link measures clearing (solvers/losses.py link_loss): "auto" takes increments for q = 2 and the
    # relative residual for power costs.
    link_form: Literal["auto", "increments", "levels", "relative"] = "auto"
    # The agents' marginal benefit in the link: path by path, or its regression on the state (the conditional
    # expectation of their first-order condition); "auto" regresses for power costs, where (G')^-1 is
    # nonlinear and would turn the path-wise future noise into a bias.
    link_expectation: Literal["auto", "pathwise", "regression"] = "auto"
    # How the market phase meets the link when mu is learned: "gradient" descends the link loss; "exact"
    # solves it for mu by back-substitution (solvers/implied.py) and fits the mu network to that; "auto"
    # solves it exactly for power costs, whose link loss flattens out near clearing.
    link_solve: Literal["auto", "gradient", "exact"] = "auto"
    link_weight: Annotated[float, Number, Field(ge=0, allow_inf_nan=False)] = 1.0
    # The market's volatility at T: "pinned" builds sigma_T = alpha (an equilibrium invariant) into the
    # network; "free" leaves it to the terminal condition. Measured: on E3 (power costs, ten agents) a free
    # sigma ended at 0.98-0.99, pinned at alpha with the terminal error below the published one; on short
    # quadratic runs pinning slowed the fit of mu_0 (quickstart, 240 iterations: 3.4% -> 8.1% off).
    sigma_at_maturity: Literal["free", "pinned"] = "free"
    # The agents' rates as a function of time: "free" (the policy network alone) or "shared": times one
    # learned factor of time common to all agents (solvers/networks.py PolicyNet). Measured on E3: with a
    # strong clearing penalty only the shared factor let the agents slow their trading before T as their
    # best responses do, which took the equilibrium gap from 1.2% to under 1% of their gain.
    rate_profile: Literal["free", "shared"] = "free"
    # Reliability (docs/reliability.md). Checkpoints are always written at the start of each phase.
    checkpoint_every: Annotated[int, Number, Field(ge=0, le=10**9)] = Field(
        0, description="also checkpoint every so many iterations; 0: only at the start of each phase")
    grad_clip: Annotated[float, Number, Field(ge=0, allow_inf_nan=False)] = Field(
        0.0, description="clip the gradient norm of each step to this value; 0: off")
    divergence_retries: Annotated[int, Number, Field(ge=0, le=100)] = Field(
        3, description="roll-backs to the last good state (learning rate halved each time) before a run "
                       "with non-finite losses or gradients ends as diverged")
    # Who trains the agents' phase: gradients through the roll-out, or a stable-baselines3 algorithm.
    agent_learner: Literal["pathwise", "sb3:ppo", "sb3:sac", "sb3:td3"] = "pathwise"

    @model_validator(mode="before")
    @classmethod
    def _schedule_defaults(cls, data: Any) -> Any:
        """The adaptive schedule's own defaults fill what is not given."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("schedule") == "adaptive":
            data.setdefault("mu_mode", "implied")
            data.setdefault("batch_size", 2048)
        return data

    @model_validator(mode="after")
    def _adaptive_settings_apply(self) -> SolverSettings:
        if self.schedule != "adaptive":
            return self
        if self.method != "rlink":
            raise Rule("solver.schedule", "adaptive", f"is a schedule of method 'rlink', not of '{self.method}'; "
                        "use schedule = 'rounds' with the baselines")
        if self.mu_mode == "learned":
            raise Rule("solver.mu_mode", "learned", "trains a mu network by gradient and needs schedule = "
                        "'rounds'; the adaptive schedule takes mu from the link: use 'implied' or 'known'")
        for name in ROUNDS_ONLY:
            value, default = getattr(self, name), type(self).model_fields[name].default
            if value != default:
                raise Rule(f"solver.{name}", value, "is a setting of schedule = 'rounds'; the adaptive schedule "
                            "sets it itself: remove it, or set solver.schedule = 'rounds'")
        return self

    @field_validator("clearing_weight", mode="before")
    @classmethod
    def _one_weight_for_all_rounds(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value

    def round_schedule(self, round_index: int) -> RoundPlan:
        """The plan of a 0-based round; each per-round list repeats its last entry."""

        def pick(values: list[Any]) -> Any:
            return values[min(round_index, len(values) - 1)]

        return RoundPlan(pick(self.agents_iterations), pick(self.market_iterations), pick(self.agents_lr),
                         pick(self.market_lr), pick(self.clearing_weight))

    @property
    def total_iterations(self) -> int:
        return sum(sum(self.round_schedule(r)[:2]) for r in range(self.rounds))


# Settings that only the fixed (rounds) schedule reads; the adaptive one refuses them rather than ignore them.
ROUNDS_ONLY = ("rounds", "warm_start", "market_batch_size", "agents_iterations", "market_iterations", "agents_lr",
               "market_lr", "market_hidden", "clearing_weight", "lr_decay", "nonlinear", "link_form",
               "link_expectation", "link_solve", "link_weight", "sigma_at_maturity", "rate_profile",
               "agent_learner")


class RunSettings(Frozen):
    """Reproducibility and hardware: seed, test set size, dtype and device."""

    seed: Annotated[int, Number, Field(ge=0, lt=2**63)] = 0
    test_paths: Annotated[int, Number, Field(ge=2, le=10_000_000)] = 3000
    dtype: Literal["float32", "float64"] = "float32"
    device: Literal["cpu", "cuda", "auto"] = "auto"


class Scenario(Frozen):
    """A complete, validated scenario: market, agents, frictions, solver and run settings."""

    name: str = "scenario"
    description: str = ""
    market: Market
    agents: Annotated[list[Agent], Field(min_length=2, max_length=1000)]
    frictions: Frictions
    solver: SolverSettings = SolverSettings()
    run: RunSettings = RunSettings()

    @field_validator("agents")
    @classmethod
    def _exposures_sum_to_zero(cls, agents: list[Agent]) -> list[Agent]:
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
    def _known_mu_needs_identity(self) -> Scenario:
        if self.solver.mu_mode == "known" and self.frictions.q != 2 and self.n_agents > 2:
            raise Rule(
                "solver.mu_mode", "known",
                f"needs q = 2 or exactly 2 agents (the return identity), but q = {self.frictions.q:g} "
                f"with {self.n_agents} agents; use mu_mode = 'learned' or 'implied'",
            )
        if self.solver.mu_mode == "implied" and self.solver.method != "rlink":
            raise Rule("solver.mu_mode", "implied",
                        f"is a mode of the reinforcement-link solver, not of method '{self.solver.method}'; "
                        "use mu_mode = 'learned' or method = 'rlink'")
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


_ALIASES = {"lam": "lambda"}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- error messages ----------------------------------------------------------------------------------

def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _internal(part):
            key = str(part)
            if not re.fullmatch(r"[A-Za-z0-9_-]+", key):  # written as TOML writes such a key: quoted
                key = json.dumps(key, ensure_ascii=False)
            text += ("." if text else "") + key
    return text or "scenario"


def _internal(part: Any) -> bool:
    return isinstance(part, str) and part.startswith(("function-", "constrained-"))


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (collecting its constraints) and ``X | None``."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation, *extras = typing.get_args(annotation)
            for extra in extras:
                metadata = metadata + (list(extra.metadata) if isinstance(extra, FieldInfo) else [extra])
        elif isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation, metadata


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_field(model: type[BaseModel], key: Any) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _field_at(loc: tuple[Any, ...], root: type[BaseModel] | None = None) -> tuple[Any, list[Any], str] | None:
    """(type, constraints, description) of the field a pydantic error location (in ``root``, by default the
    scenario) points at."""
    annotation, metadata, description = root or Scenario, [], ""
    for part in (p for p in loc if not _internal(p)):
        annotation, metadata = _unwrap(annotation, metadata)
        if isinstance(part, int) and typing.get_origin(annotation) is list:
            annotation, metadata, description = typing.get_args(annotation)[0], [], ""
        elif isinstance(part, str) and _is_model(annotation):
            info = _model_field(annotation, part)
            if info is None:
                return None
            annotation, metadata, description = info.annotation, list(info.metadata), info.description or ""
        else:
            return None
    annotation, metadata = _unwrap(annotation, metadata)
    return annotation, metadata, description


def _fmt(number: Any) -> str:
    if isinstance(number, int) and number > 2**30 and number & (number - 1) == 0:
        return f"2**{number.bit_length() - 1}"
    return f"{number:g}" if isinstance(number, float) else str(number)


def _range(metadata: list[Any]) -> str:
    """``> 0``, ``>= 1``, ``in (1, 2]`` from annotated-types constraints."""
    low = high = None
    for item in metadata:
        for attr, symbol, bracket in (("gt", ">", "("), ("ge", ">=", "[")):
            if getattr(item, attr, None) is not None:
                low = (symbol, bracket, _fmt(getattr(item, attr)))
        for attr, symbol, bracket in (("lt", "<", ")"), ("le", "<=", "]")):
            if getattr(item, attr, None) is not None:
                high = (symbol, bracket, _fmt(getattr(item, attr)))
    if low and high:
        return f" in {low[1]}{low[2]}, {high[2]}{high[1]}"
    bound = low or high
    return f" {bound[0]} {bound[2]}" if bound else ""


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _min_length(metadata: list[Any]) -> int | None:
    return next((m.min_length for m in metadata if getattr(m, "min_length", None)), None)


_WORDS = {bool: ("true or false", "true/false values"), str: ("text in quotes", "texts in quotes"),
          int: ("an integer", "integers"), float: ("a number", "numbers")}


def _expected(annotation: Any, metadata: list[Any], key: str = "", plural: bool = False) -> str:
    """What a field allows, in words: ``a number > 0``, ``one of 'cpu', 'cuda', 'auto'``, ..."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(annotation))
    if origin is list:
        item, item_meta = _unwrap(typing.get_args(annotation)[0], [])
        low = _min_length(metadata) or 0
        if _is_model(item):
            keys = ", ".join(info.alias or name for name, info in item.model_fields.items())
            return f"at least {_count(low, f'[[{key}]] table')} (one per agent; keys: {keys})"
        size = f" with at least {_count(low, 'entry', 'entries')}" if low else ""
        return f"a list of {_expected(item, item_meta, plural=True)}{size}"
    if _is_model(annotation):
        keys = ", ".join(info.alias or name for name, info in annotation.model_fields.items())
        return f"a [{key}] table (keys: {keys})"
    single, many = _WORDS.get(annotation, (getattr(annotation, "__name__", str(annotation)),) * 2)
    return (many if plural else single) + _range(metadata)


def _unknown_key(loc: tuple[Any, ...], root: type[BaseModel] | None = None) -> str:
    parent = _field_at(loc[:-1], root)
    model = parent[0] if parent else None
    if not _is_model(model):
        return "unknown key; remove it or check its spelling (see scenarios/quickstart.toml)"
    keys = [info.alias or name for name, info in model.model_fields.items()]
    sections = {Scenario: "at the top level", Agent: "in [[agents]]"}
    section = sections.get(model, getattr(model, "toml_section", None) or f"in [{_format_loc(loc[:-1])}]")
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {section}; allowed: {', '.join(keys)}{hint}"


def _explain(error: dict[str, Any], root: type[BaseModel] | None = None) -> tuple[Any, str]:
    """(value to show, what is allowed) for one pydantic error."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    field = _field_at(loc, root)
    if kind == "extra_forbidden":
        return value, _unknown_key(loc, root)
    if field is None:
        return value, error["msg"][0].lower() + error["msg"][1:]
    annotation, metadata, description = field
    key = next((str(p) for p in reversed(loc) if isinstance(p, str) and not _internal(p)), "")
    if _is_model(annotation) and loc and isinstance(loc[-1], int):
        expected = f"a [[{key}]] table (keys: {', '.join(annotation.model_fields)})"
    else:
        expected = _expected(annotation, metadata, key)
    if kind == "finite_number":
        expected = expected.replace("a number", "a finite number")
    about = f" ({description})" if description else ""
    if kind == "missing":
        return _MISSING, f"required; add {expected}{about}"
    if loc == ("agents",) and kind in ("too_short", "too_long") and isinstance(value, list):
        ctx = error.get("ctx", {})
        short = kind == "too_short"
        bound = f"at least {ctx.get('min_length')}" if short else f"at most {ctx.get('max_length')}"
        allowed = f"a market needs {bound} agents{' (N >= 2)' if short else ''}, one [[agents]] table each"
        return _Shown(_count(len(value), "agent")), allowed
    if kind == "list_type" and _is_model(_unwrap(typing.get_args(annotation)[0], [])[0]):
        return value, f"must be an array of tables: write [[{key}]] (double brackets) once per agent"
    if kind == "number_type" and isinstance(value, str):
        try:
            float(value)
            return value, f"must be {expected}{about}, written without quotes"
        except ValueError:
            pass
    return value, f"must be {expected}{about}"


def validate_data(data: Any, source: str | None) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise scenario_error(exc, source) from None


def scenario_error(exc: ValidationError, source: str | None, root: type[BaseModel] | None = None,
                    prefix: str = "") -> ScenarioError:
    """The first error of a validation as one line; ``prefix`` names where ``root`` sits in the file."""
    err = exc.errors(include_url=False)[0]
    rule = err.get("ctx", {}).get("error")
    if isinstance(rule, Rule):
        field, value, allowed = rule.field, rule.value, rule.allowed
    else:
        field = _format_loc(err["loc"])
        value, allowed = _explain(err, root)
        field = "" if field == "scenario" and prefix else field
    return ScenarioError(".".join(p for p in (prefix, field) if p), value, allowed, source)


# --- files -------------------------------------------------------------------------------------------

def read_text(path: Path) -> str:
    name = str(path)
    if path.is_dir():
        raise ScenarioError("file", name, "is a directory; give the path of a scenario .toml file")
    if not path.is_file():
        raise ScenarioError("file", name, "no such scenario file; give the path of a .toml file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError("file", name, f"cannot be read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioError("file", name, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}: "
                                          f"{exc.reason}); save it as UTF-8") from None


def toml_error(exc: tomllib.TOMLDecodeError, text: str, source: str) -> ScenarioError:
    """The ScenarioError for a TOML syntax error: one line with the line, the column and the text there."""
    message = str(exc)
    where = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    reason = reason[:1].lower() + reason[1:]
    if where is None:
        return ScenarioError("toml", _Shown("end of document"), f"malformed TOML: {reason}; fix the syntax",
                             source)
    line, column = int(where[1]), int(where[2])
    lines = text.split("\n")
    shown = lines[line - 1].strip() if line <= len(lines) else ""
    allowed = f"malformed TOML: {reason} (column {column}); fix the syntax there"
    return ScenarioError(f"line {line}", shown, allowed, source)


def scenario_to_toml(scenario: Scenario) -> str:
    """TOML text that :func:`load_scenario` turns back into an equal scenario."""
    data = scenario.model_dump(by_alias=True, exclude_none=True)
    return tomli_w.dumps(data)
