"""Scenario files: TOML text (a file or a string) read, its populations expanded, and validated."""

from __future__ import annotations

import tomllib
from pathlib import Path

from marketeq.populations import expand_agents
from marketeq.scenario import Scenario, read_text, toml_error, validate_data

__all__ = ["load_scenario"]


def load_scenario(source: str | Path, *, text: str | None = None) -> Scenario:
    """Read and validate a scenario from a TOML file (or from ``text``, named ``source`` in errors)."""
    name = str(source)
    if text is None:
        text = read_text(Path(source))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(exc, text, name) from None
    return validate_data(expand_agents(data, Path(source).parent, name), source=name)
