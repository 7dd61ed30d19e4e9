"""Every scenario file, however broken, gives a valid scenario or one clear line and exit code 2.

Property-based: hypothesis writes scenario files by mutating the quickstart (random keys, types, values,
nesting, huge numbers), by breaking TOML text, and by changing encodings or writing raw bytes, and feeds
each one to ``marketeq validate`` in-process (a handful through a real subprocess). Deterministic in CI;
``MARKETEQ_FUZZ_EXAMPLES=5000`` explores more, with fresh random cases.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketeq.cli import main
from marketeq.scenario import Scenario, scenario_to_toml
from marketeq.scenario_files import load_scenario

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = tomllib.loads((ROOT / "scenarios" / "quickstart.toml").read_text(encoding="utf-8"))
EXTRA = int(os.environ.get("MARKETEQ_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXTRA or 250, derandomize=not EXTRA, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SECTIONS = {name: Scenario.model_fields[name].annotation for name in ("market", "frictions", "solver", "run")}
KNOWN_KEYS = sorted({info.alias or name for model in SECTIONS.values()
                     for name, info in model.model_fields.items()}
                    | {"gamma", "xi", "name", "description", "agents", *SECTIONS})

huge_numbers = st.sampled_from([2**63, -(2**63) - 1, 10**400, 2**64 + 1, 1e308, -1e308, 5e-324,
                                1.7976931348623157e308])
scalars = st.one_of(
    st.booleans(), st.integers(), huge_numbers, st.floats(), st.text(max_size=12),
    st.datetimes(), st.dates(), st.times(),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=8))
nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=8)
values = st.one_of(scalars, st.lists(st.one_of(st.integers(), st.floats(), huge_numbers), max_size=3), nested)


def _edit(data: dict, where: list, key: str, value, delete: bool) -> None:
    """Set or delete ``key`` in the table reached by ``where`` (missing tables are created)."""
    table = data
    for part in where:
        if isinstance(table, list):
            if not table:
                return
            table = table[part % len(table)]
        elif isinstance(table, dict):
            table = table.setdefault(part, {})
        else:
            return
    if not isinstance(table, dict):
        return
    if delete:
        table.pop(key, None)
    else:
        table[key] = value


def _fields(model) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


TABLES = {("market",): _fields(SECTIONS["market"]), ("frictions",): _fields(SECTIONS["frictions"]),
          ("solver",): _fields(SECTIONS["solver"]), ("run",): _fields(SECTIONS["run"]),
          ("agents", 0): ["gamma", "xi", "name"], ("agents", 2): ["gamma", "xi", "name"],
          (): ["name", "description", "market", "agents", "frictions", "solver", "run"]}


@st.composite
def edit(draw) -> tuple[list, str, object, bool]:
    """Mostly a known key of the right table (so validation goes deep), sometimes any key anywhere."""
    where = draw(st.sampled_from(sorted(TABLES)))
    key = draw(st.sampled_from(TABLES[where])) if draw(st.integers(0, 4)) else draw(keys)
    return list(where), key, draw(values), draw(st.integers(0, 5)) == 0


edits = st.lists(edit(), min_size=1, max_size=3)


@st.composite
def mutated_scenarios(draw) -> bytes:
    """The quickstart with a few keys set to random values (any type, nesting, size) or removed."""
    data = tomllib.loads(tomli_w.dumps(QUICKSTART))
    for where, key, value, delete in draw(edits):
        _edit(data, where, key, value, delete)
    if draw(st.integers(0, 5)) == 0:  # a whole section replaced by something else
        data[draw(st.sampled_from(["market", "agents", "solver", "frictions", "run"]))] = draw(values)
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):  # not representable in TOML (e.g. a list of mixed tables): write junk
        text = repr(data)
    return text.encode("utf-8", errors="surrogatepass")


NUMERIC = {where: [key for key in fields if key not in ("name", "description", "method", "mu_mode", "dtype",
                                                        "device", "nonlinear", "link_form")]
           for where, fields in TABLES.items() if where}
extreme = st.one_of(huge_numbers, st.floats(), st.integers(),
                    st.lists(huge_numbers | st.floats(), max_size=3))


@st.composite
def extreme_numbers(draw) -> bytes:
    """The quickstart with numeric fields (several agents' xi at once, say) at extreme or odd values."""
    data = tomllib.loads(tomli_w.dumps(QUICKSTART))
    tables = sorted(NUMERIC) + [("agents", 1)]
    for where in draw(st.lists(st.sampled_from(tables), min_size=1, max_size=4)):
        key = draw(st.sampled_from(NUMERIC.get(where, ["gamma", "xi"])))
        _edit(data, list(where), key, draw(extreme), False)
    return tomli_w.dumps(data).encode()


@st.composite
def broken_texts(draw) -> bytes:
    """Valid TOML cut short, spliced with random text, re-encoded, or plain random bytes."""
    text = tomli_w.dumps(QUICKSTART)
    kind = draw(st.sampled_from(["cut", "splice", "encoding", "bytes", "bom"]))
    if kind == "cut":
        return text[: draw(st.integers(0, len(text)))].encode()
    if kind == "splice":
        at = draw(st.integers(0, len(text)))
        return (text[:at] + draw(st.text(max_size=20)) + text[at:]).encode("utf-8", errors="surrogatepass")
    if kind == "encoding":
        return text.encode(draw(st.sampled_from(["utf-16", "utf-32", "utf-16-le", "cp1252", "latin-1"])))
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    return draw(st.binary(max_size=200))


def validate(tmp_dir: Path, content: bytes) -> tuple[int, str, str]:
    path = tmp_dir / "fuzz.toml"
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, out.getvalue(), err.getvalue()


def check_outcome(tmp_dir: Path, content: bytes) -> None:
    code, out, err = validate(tmp_dir, content)
    if code == 0:
        assert err == "" and ": ok" in out
        scenario = load_scenario(tmp_dir / "fuzz.toml")
        assert load_scenario("again", text=scenario_to_toml(scenario)) == scenario  # valid ones round-trip
    else:
        assert code == 2, (code, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("marketeq: ") and out == "", err
        assert "Traceback" not in err and len(lines[0]) < 600


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(content=mutated_scenarios())
def test_mutated_scenarios_validate_or_fail_in_one_line(folder, content):
    check_outcome(folder, content)


@settings(FUZZ, max_examples=EXTRA or 150)
@given(content=extreme_numbers())
def test_extreme_numbers_validate_or_fail_in_one_line(folder, content):
    check_outcome(folder, content)


@settings(FUZZ, max_examples=EXTRA or 150)
@given(content=broken_texts())
def test_broken_text_and_encodings_fail_in_one_line(folder, content):
    check_outcome(folder, content)


def test_a_few_bad_files_through_the_real_command(tmp_path):
    cases = {
        "huge.toml": tomli_w.dumps({**QUICKSTART, "market": {**QUICKSTART["market"], "steps": 10**30}})
        .encode(),
        "utf16.toml": tomli_w.dumps(QUICKSTART).encode("utf-16"),
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        done = subprocess.run([sys.executable, "-m", "marketeq", "validate", str(path)], capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 2 and done.stdout == "", (name, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and str(path) in lines[0], (name, done.stderr)
