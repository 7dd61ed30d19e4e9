"""The building blocks of the scenario schema: typed numbers, the frozen base model and the one-line error."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = ["MISSING", "FiniteFloat", "Frozen", "Number", "PositiveFloat", "Rule", "ScenarioError", "Shown",
           "StrictBool", "short"]


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
