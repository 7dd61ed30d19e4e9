"""The building blocks of the scenario schema: typed numbers, the frozen base model and the one-line error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = ["MISSING", "Allowed", "FiniteFloat", "Frozen", "Number", "Numbers", "PositiveFloat", "Rule",
           "ScenarioError", "Shown", "StrictBool", "numbers", "short"]


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


@dataclass(frozen=True)
class Allowed:
    """What a field allows, in words, where its type alone would say too little (a number or a matrix)."""

    text: str


# A number, a list of numbers or a list of lists: one asset's scalar, or d assets' vector or matrix.
Numbers = float | list[float] | list[list[float]]


def _number(value: Any) -> float:
    if isinstance(value, str | bytes | bool) or not isinstance(value, int | float):
        _no_text_for_numbers(value)
        raise PydanticCustomError("float_type", "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise PydanticCustomError("finite_number", "must be a finite number")
    return number


def numbers(depths: tuple[int, ...], low: float | None = None, strict: bool = True) -> BeforeValidator:
    """A validator of a number (depth 0), a list of numbers (1) or a list of equally deep lists (2), finite,
    at one of ``depths``. A single number must be > ``low`` (>= when not ``strict``); entries of lists are
    judged with the market's number of assets, in :mod:`marketeq.scenario.assets`."""

    def convert(value: Any, depth: int) -> tuple[Any, int]:
        if not isinstance(value, list | tuple):
            return _number(value), 0
        if not value or depth >= max(depths):
            raise PydanticCustomError("numbers_shape", "must be a number, list or matrix")
        items = [convert(v, depth + 1) for v in value]
        inner = {d for _, d in items}
        if len(inner) != 1:
            raise PydanticCustomError("numbers_shape", "mixes numbers and lists")
        return [v for v, _ in items], inner.pop() + 1

    def check(value: Any) -> Any:
        converted, depth = convert(value, 0)
        if depth not in depths:
            raise PydanticCustomError("numbers_shape", "must be a number, list or matrix")
        if depth == 0 and low is not None and (converted <= low if strict else converted < low):
            raise PydanticCustomError("greater_than", "out of range")
        return converted

    return BeforeValidator(check)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``str()`` is one line naming field, value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str, source: str | None = None) -> None:
        self.field, self.value, self.allowed, self.source = field, value, allowed, source
        where = f"{source}: " if source else ""
        shown = short(value, limit=None if field == "file" else 60)  # a path is never cut short
        head = f"{field} is missing" if value is MISSING else f"{field} = {shown}"
        super().__init__(" ".join(f"{where}{head}: {allowed}".split()))


class Shown(str):
    """A value already written for people (``1 agent``): shown as is, without quotes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def short(value: Any, limit: int | None = 60) -> str:
    if isinstance(value, bool):
        return str(value).lower()  # as written in TOML
    text = repr(value) if not isinstance(value, str) or value else "''"
    text = " ".join(text.split())
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


class Rule(ValueError):
    """A rule across fields, raised inside pydantic and reported as a :class:`ScenarioError` of its field."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field} = {short(value)}: {allowed}")


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=False)
