"""Benchmark records: how they are written, judged over seeds, rendered and re-made by reproduce.py."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import benchlib  # noqa: E402
import reproduce  # noqa: E402
import results_md  # noqa: E402
from seedstats import Target, spread, target_with_floor, versus_method, versus_target  # noqa: E402


@pytest.fixture
def records(tmp_path, monkeypatch):
    folder = tmp_path / "records"
    monkeypatch.setenv("MARKETEQ_RECORDS", str(folder))
    return folder


def test_save_record_writes_provenance_seeds_and_per_seed_metrics(records, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(SCRIPTS / "bench_x.py"), "--quick"])
    path = benchlib.save_record(
        "bench_x",
        "X",
        {"tables": []},
        seeds=[0, 1, 2],
        per_seed={0: {"clearing": [1e-5, 1e-7]}, 1: {"clearing": [2e-5, 1e-7]}},
        quick=True,
    )
    assert path == records / "bench_x.json"
    record = json.loads(path.read_text())
    assert record["command"] == "python scripts/bench_x.py --quick"
    assert record["seeds"] == [0, 1, 2] and record["quick"] is True
    assert record["per_seed"]["1"]["clearing"] == [2e-5, 1e-7]  # JSON keys are strings
    assert len(record["commit"].removesuffix("+changes")) == 40
    assert "platform" in record["machine"] and record["date"]
    assert [p.name for p in records.iterdir()] == ["bench_x.json"]  # no temporary file left beside it


def test_records_default_to_data_results(monkeypatch):
    monkeypatch.delenv("MARKETEQ_RECORDS", raising=False)
    assert benchlib.records_dir() == benchlib.ROOT / "data" / "results"


def _record(**changes):
    machine = {
        "cpu": "x86_64",
        "cores": 2,
        "torch_threads": 1,
        "torch": "2",
        "python": "3.11",
        "platform": "Linux",
    }
    return {
        "title": "T",
        "command": "python scripts/t.py",
        "date": "2026-01-01",
        "commit": "a" * 40,
        "machine": machine,
        "seeds": [0, 1, 2],
        "tables": [],
        **changes,
    }


def test_render_marks_stale_and_quick_records_only():
    machine = {k: v for k, v in _record()["machine"].items() if k != "platform"}
    page = results_md.render(
        {
            "bench_e1": _record(),
            "compare_e1": _record(title="Old", machine=machine),
            "compare_e2": _record(title="Quick", quick=True),
        }
    )
    sections = {s.split("\n", 1)[0]: s for s in page.split("\n## ")[1:]}
    assert results_md.STALE not in sections["T"] and results_md.QUICK not in sections["T"]
    assert results_md.STALE in sections["Old"] and results_md.QUICK not in sections["Old"]
    assert results_md.QUICK in sections["Quick"] and results_md.STALE not in sections["Quick"]
    assert "seeds 0, 1, 2" in sections["T"] and "commit aaaaaaaaaaaa" in sections["T"]


def test_render_orders_known_records_first():
    page = results_md.render(
        {"zzz": _record(title="Z"), "compare_e1": _record(title="C"), "bench_e1": _record(title="B")}
    )
    assert page.index("## B") < page.index("## C") < page.index("## Z")


def test_every_committed_record_renders_and_has_provenance():
    found = results_md.read_records(benchlib.ROOT / "data" / "results")
    assert {"bench_e1", "compare_e1", "compare_e2", "compare_e3"} <= set(found)
    for name, record in found.items():
        assert record["command"].startswith("python scripts/"), name
        assert results_md.section(record).startswith(f"## {record['title']}")


def test_spread_and_target_verdicts():
    s = spread([1.0, 2.0, 3.0])
    assert (s.n, s.mean, s.sd) == (3, 2.0, 1.0) and math.isclose(s.se, 1 / math.sqrt(3))
    assert spread([float("nan"), 4.0]).n == 1
    assert versus_target([1.0, 1.1, 0.9], Target(2.0, "p")) == "better than p on every seed"
    assert versus_target([3.0, 3.1, 2.9], Target(2.0, "p")) == "worse than p on every seed"
    # one seed contradicts: no verdict, even though the mean is better by more than two standard errors
    assert (
        versus_target([0.5, 0.5, 0.5, 0.5, 2.1], Target(2.0, "p"))
        == "no verdict against p: better on 4 of 5 seeds"
    )
    assert versus_target([1.9, 2.2, 1.95], Target(2.0, "p")).startswith("not distinguishable")
    assert "one seed" in versus_target([1.0], Target(2.0, "p"))


def test_terminal_target_is_never_below_the_floor():
    target = target_with_floor(2.7e-7, [1.8e-6, 1.7e-6, 1.9e-6])
    assert target.floor and target.value == [1.8e-6, 1.7e-6, 1.9e-6]
    assert versus_target([1e-9, 2e-9, 3e-9], target).startswith("at or below the floor")
    assert not target_with_floor(1e-5, [1.8e-6]).floor  # a published number above the floor stays the target
    assert not target_with_floor(1e-5, None).floor


def test_versus_method_pairs_seeds():
    assert versus_method([1.0, 2.0, 3.0], [5.0, 6.0, 7.0], "rlink", "joint") == "rlink better on every seed"
    assert versus_method([5.0, 6.0, 7.0], [1.0, 2.0, 3.0]) == "rlink NOT better on every seed"
    assert versus_method([1.0, 9.0, 1.0], [2.0, 2.0, 2.0]).startswith(("no verdict", "not distinguishable"))
    assert (
        versus_method([0.01, 0.02], [0.01, 0.005], ours_se=[0.01, 0.01], theirs_se=[0.01, 0.01])
        == "both within two standard errors of 0 on every seed"
    )


def _fake_run(clearing: float, terminal: float, solver: str = "rlink", oracle_name: str | None = None):
    from marketeq import Metric

    return SimpleNamespace(
        metrics={"clearing": Metric(clearing, 1e-9), "terminal": Metric(terminal, 1e-10)},
        status="completed",
        paths=None,
        message="",
        oracle_name=oracle_name,
        solver=solver,
    )


def test_paper_compare_verdicts_hold_on_every_seed_and_respect_the_floor():
    import paper_compare

    published = {"clearing": 2.3e-5, "terminal": 2.73e-7}
    runs = {
        seed: {"rlink": _fake_run(c, 1e-9), "oracle": _fake_run(0.0, 1.8e-6, "oracle:riccati", "riccati")}
        for seed, c in ((0, 1e-5), (1, 1.1e-5), (2, 9.7e-5))
    }  # seed 2 misses the published clearing
    notes = paper_compare.checks(runs, published)
    clearing = next(n for n in notes if n.startswith("rlink clearing"))
    terminal = next(n for n in notes if n.startswith("rlink terminal"))
    assert "every seed" not in clearing and "better than" not in clearing.split(": ", 1)[1].split(" on ")[0]
    assert "floor" in terminal and "2.73e-07 lies below it" in terminal


def _fake_step(tmp_path: Path, name: str, body: str) -> reproduce.Step:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(body))
    return reproduce.Step(name, str(script), (), ("--quick",), (name,))


def test_reproduce_runs_every_step_reports_failures_and_renders(tmp_path, capsys):
    writes = """
        import os, sys
        sys.path.insert(0, {scripts!r})
        from benchlib import save_record
        save_record({name!r}, {name!r}, {{"tables": []}}, seeds=[0], quick="--quick" in sys.argv)
        sys.exit({code})
    """
    steps = [
        _fake_step(tmp_path, "good", writes.format(scripts=str(SCRIPTS), name="good", code=0)),
        _fake_step(tmp_path, "crash", "raise SystemExit(3)\n"),
        _fake_step(tmp_path, "silent", "print('did nothing')\n"),
        _fake_step(tmp_path, "late", writes.format(scripts=str(SCRIPTS), name="late", code=0)),
    ]
    records, page = tmp_path / "records", tmp_path / "results.md"
    outcomes = reproduce.run_all(steps, True, records, tmp_path / "logs", None, page)
    result = {o.step: o for o in outcomes}
    assert result["good"].passed and result["late"].passed and result["results_md"].passed
    assert result["crash"].why == "exit status 3"
    assert "wrote no record" in result["silent"].why
    assert json.loads((records / "good.json").read_text())["quick"] is True
    assert "## good" in page.read_text() and "## late" in page.read_text()
    out = capsys.readouterr().out
    assert "[1/4] good ok" in out and "[2/4] crash FAILED" in out and "[4/4] late ok" in out


def test_reproduce_stops_a_step_at_its_timeout(tmp_path):
    step = _fake_step(tmp_path, "slow", "import time\ntime.sleep(30)\n")
    outcome = reproduce.run_step(step, True, tmp_path, tmp_path, {}, timeout_s=0.5)
    assert not outcome.passed and "timeout" in outcome.why and outcome.seconds < 10


def test_reproduce_rejects_unknown_steps_and_lists_the_known(capsys):
    assert reproduce.main(["--only", "nope"]) == 2
    assert "--only: unknown step nope" in capsys.readouterr().err
    assert reproduce.main(["--list", "--quick"]) == 0
    listed = capsys.readouterr().out
    assert all(step.name in listed for step in reproduce.STEPS) and "--quick" in listed


def test_every_reproduce_step_names_an_existing_script_with_a_quick_flag():
    for step in reproduce.STEPS:
        text = (SCRIPTS / step.script).read_text()
        assert '"--quick"' in text, step.script
        assert "--quick" in step.quick, step.name
