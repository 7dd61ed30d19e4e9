"""Every way a scenario can be wrong, as one line: pydantic's errors, TOML syntax errors and unreadable files.

The line names the field, the offending value and what is allowed, in words taken from the schema (the
field's type, range and description).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from marketeq.scenario.fields import MISSING, Allowed, Rule, ScenarioError, Shown

__all__ = ["allowed_words", "read_text", "scenario_error", "toml_error"]


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


def _field_at(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[Any, list[Any], str] | None:
    """(type, constraints, description) of the field a pydantic error location in ``root`` points at."""
    annotation, metadata, description = root, [], ""
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
    said = next((m.text for m in metadata if isinstance(m, Allowed)), None)
    if said is not None:
        return said
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


def allowed_words(annotation: Any, metadata: list[Any]) -> str:
    """What a field of this type and these constraints allows, in words (as the error messages say it)."""
    annotation, metadata = _unwrap(annotation, metadata)
    return _expected(annotation, metadata)


def _unknown_key(loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    parent = _field_at(loc[:-1], root)
    model = parent[0] if parent else None
    if not _is_model(model):
        return "unknown key; remove it or check its spelling (see scenarios/quickstart.toml)"
    keys = [info.alias or name for name, info in model.model_fields.items()]
    section = getattr(model, "toml_section", None) or f"in [{_format_loc(loc[:-1])}]"
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {section}; allowed: {', '.join(keys)}{hint}"


def _explain(error: dict[str, Any], root: type[BaseModel]) -> tuple[Any, str]:
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
        return MISSING, f"required; add {expected}{about}"
    if loc == ("agents",) and kind in ("too_short", "too_long") and isinstance(value, list):
        ctx = error.get("ctx", {})
        short = kind == "too_short"
        bound = f"at least {ctx.get('min_length')}" if short else f"at most {ctx.get('max_length')}"
        allowed = f"a market needs {bound} agents{' (N >= 2)' if short else ''}, one [[agents]] table each"
        return Shown(_count(len(value), "agent")), allowed
    if kind == "list_type" and _is_model(_unwrap(typing.get_args(annotation)[0], [])[0]):
        return value, f"must be an array of tables: write [[{key}]] (double brackets) once per agent"
    if kind == "number_type" and isinstance(value, str):
        try:
            float(value)
            return value, f"must be {expected}{about}, written without quotes"
        except ValueError:
            pass
    return value, f"must be {expected}{about}"


def scenario_error(exc: ValidationError, source: str | None, root: type[BaseModel],
                    prefix: str = "") -> ScenarioError:
    """The first error of a validation of ``root`` as one line; ``prefix`` names where ``root`` sits in the
    file (empty for the whole scenario)."""
    err = exc.errors(include_url=False)[0]
    rule = err.get("ctx", {}).get("error")
    if isinstance(rule, Rule):
        field, value, allowed = rule.field, rule.value, rule.allowed
    else:
        field = _format_loc(err["loc"])
        value, allowed = _explain(err, root)
        field = "" if field == "scenario" and prefix else field
    return ScenarioError(".".join(p for p in (prefix, field) if p), value, allowed, source)

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
        return ScenarioError("toml", Shown("end of document"), f"malformed TOML: {reason}; fix the syntax",
                             source)
    line, column = int(where[1]), int(where[2])
    lines = text.split("\n")
    shown = lines[line - 1].strip() if line <= len(lines) else ""
    allowed = f"malformed TOML: {reason} (column {column}); fix the syntax there"
    return ScenarioError(f"line {line}", shown, allowed, source)
