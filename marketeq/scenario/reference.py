"""The settings reference, docs/scenario.md, generated from the schema (each field's type, default and
description), so that the page, the GUI's tooltips and the error messages say the same thing.

    python -m marketeq.scenario.reference [docs/scenario.md]

writes the page; ``tests/test_settings.py`` checks that the committed page is current.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from marketeq.files import atomic_path
from marketeq.methods import SOLVERS
from marketeq.scenario import Agent, Frictions, Market, RunSettings, Scenario, SolverSettings
from marketeq.scenario.messages import allowed_words

__all__ = ["scenario_reference", "write_reference"]

SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("top level", Scenario), ("[market]", Market), ("[[agents]]", Agent), ("[frictions]", Frictions),
    ("[solver]", SolverSettings), ("[run]", RunSettings))


def _default(info: Any) -> str:
    if info.default is PydanticUndefined:
        return "required"
    value = info.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return "none" if value is None else f"`{value}`"


def _row(key: str, info: Any) -> str:
    text = (info.description or "").replace("|", "\\|")
    return f"| `{key}` | {allowed_words(info.annotation, list(info.metadata))} | {_default(info)} | {text} |"


def scenario_reference() -> str:
    """The markdown of docs/scenario.md."""
    lines = ["# Scenario settings", "",
             "Generated from the schema in `marketeq/scenario/` by `python -m marketeq.scenario.reference`; "
             "do not edit by hand. A setting that the chosen method or mode does not read is refused with "
             "a one-line error, never ignored.", "", "Methods (`solver.method`):", ""]
    lines += [f"- `{name}`: {what}" for name, what in SOLVERS.items()]
    for title, model in SECTIONS:
        lines += ["", f"## {title}", "", (model.__doc__ or "").strip().splitlines()[0], "",
                  "| key | allowed | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            if typing.get_origin(info.annotation) is list and model is Scenario:
                continue  # the [[agents]] tables have their own section
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                continue  # a section of its own
            lines.append(_row(info.alias or name, info))
    return "\n".join(lines) + "\n"


def write_reference(path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(scenario_reference(), encoding="utf-8")


if __name__ == "__main__":
    write_reference(sys.argv[1] if len(sys.argv) > 1 else "docs/scenario.md")
