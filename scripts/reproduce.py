"""Re-measure everything: every benchmark and comparison script from scratch, then docs/results.md.

    python scripts/reproduce.py [--quick] [--only NAME ...] [--list] [--step-timeout MINUTES] [--records DIR]

Runs each step below as a subprocess of this interpreter (PYTHONPATH = this checkout), one at a time, cheap
steps first, with a progress line per step; each step's output goes to results/reproduce/<name>.log. A step
passes when it exits 0 and rewrote its record; a failing step is reported and the rest still run. Then
scripts/results_md.py renders docs/results.md from the records (those just written, and any others already in
the records directory). ``--quick`` runs each script with its reduced settings (fewer seeds, members or
iterations): a check that the whole pipeline works, not a measurement of accuracy; its records say so.
``--records DIR`` writes the records to DIR (a scratch run) and renders the page to DIR/results.md.
Exit status 0 when every step passed, 1 otherwise, 2 for an unknown step name.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


@dataclass(frozen=True)
class Step:
    """One script run: its name (as --only takes it), its full and quick arguments, the records it writes."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    records: tuple[str, ...]

    def argv(self, quick: bool) -> list[str]:
        return [str(SCRIPTS / self.script), *(self.quick if quick else self.full)]


# Cheap steps first, so a broken pipeline shows in minutes; pde_convergence after compare_e2, whose record it
# reads. The full arguments are those of the committed records (README, Benchmarks).
STEPS = (
    Step("bench_cli", "bench_cli.py", ("--record",), ("--quick", "--record"), ("bench_cli",)),
    Step(
        "assets_oracle", "assets_oracle_check.py", ("--record",), ("--quick", "--record"), ("assets_oracle",)
    ),
    Step(
        "assets_solver", "assets_solver_check.py", ("--record",), ("--quick", "--record"), ("assets_solver",)
    ),
    Step(
        "bench_memory",
        "bench_memory.py",
        ("--runs", "3", "10", "30", "100", "--iterations", "60", "--record"),
        ("--quick", "--record"),
        ("bench_memory",),
    ),
    Step("bench_scale", "bench_scale.py", (), ("--quick",), ("bench_scale",)),
    Step("bench_device", "bench_device.py", ("--record",), ("--quick", "--record"), ("bench_device",)),
    Step("family_default", "bench_family.py", (), ("--quick",), ("family_default",)),
    Step("outer_schemes", "outer_schemes.py", (), ("--quick",), ("outer_schemes",)),
    Step(
        "bench_rl", "bench_rl.py", ("--record", "--quiet"), ("--quick", "--record", "--quiet"), ("bench_rl",)
    ),
    Step("bench_sweep", "bench_sweep.py", ("--ray", "--record"), ("--quick", "--record"), ("bench_sweep",)),
    Step(
        "bench_e1",
        "bench_e1.py",
        ("--mu-mode", "both", "--record", "--quiet"),
        ("--mu-mode", "both", "--quick", "--record", "--quiet"),
        ("bench_e1",),
    ),
    Step("compare_e1", "paper_compare.py", ("e1",), ("e1", "--quick"), ("compare_e1",)),
    Step("compare_e2", "paper_compare.py", ("e2",), ("e2", "--quick"), ("compare_e2",)),
    Step("compare_e3", "paper_compare.py", ("e3",), ("e3", "--quick"), ("compare_e3",)),
    Step("e2_table", "e2_table.py", (), ("--quick", "--seeds", "0"), ("e2_table",)),
    Step("pde_convergence", "pde_convergence.py", (), ("--quick",), ("pde_convergence",)),
)


@dataclass(frozen=True)
class Outcome:
    step: str
    passed: bool
    seconds: float
    why: str  # "" when passed


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def run_step(
    step: Step, quick: bool, records: Path, logs: Path, env: dict[str, str], timeout_s: float | None
) -> Outcome:
    """Run one step to its log; passed when it exits 0 in time and rewrote every record it names."""
    before = {name: _mtime(records / f"{name}.json") for name in step.records}
    log = logs / f"{step.name}.log"
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        # its own session, so a timeout ends the step's whole process tree (worker pools included)
        process = subprocess.Popen(
            [sys.executable, *step.argv(quick)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            return Outcome(
                step.name,
                False,
                time.perf_counter() - started,
                f"stopped after the {minutes(timeout_s or 0)} step timeout",
            )
    seconds = time.perf_counter() - started
    if code != 0:
        return Outcome(step.name, False, seconds, f"exit status {code}")
    stale = [name for name in step.records if _mtime(records / f"{name}.json") == before[name]]
    if stale:
        return Outcome(step.name, False, seconds, f"exited 0 but wrote no record {', '.join(stale)}")
    return Outcome(step.name, True, seconds, "")


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime_ns if path.exists() else None


def run_all(
    steps: Sequence[Step], quick: bool, records: Path, logs: Path, timeout_s: float | None, page: Path
) -> list[Outcome]:
    """Every step in order with a progress line each, then the rendered page (its own outcome, last)."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "MARKETEQ_RECORDS": str(records),
    }
    outcomes, started = [], time.perf_counter()
    for index, step in enumerate(steps, 1):
        shown = " ".join(["python", f"scripts/{step.script}", *(step.quick if quick else step.full)])
        print(f"[{index}/{len(steps)}] {step.name}: {shown}", flush=True)
        outcome = run_step(step, quick, records, logs, env, timeout_s)
        outcomes.append(outcome)
        verdict = "ok" if outcome.passed else f"FAILED ({outcome.why}; log {logs / (step.name + '.log')})"
        print(
            f"[{index}/{len(steps)}] {step.name} {verdict} in {minutes(outcome.seconds)} "
            f"(elapsed {minutes(time.perf_counter() - started)})",
            flush=True,
        )
        if not outcome.passed:
            tail = (logs / f"{step.name}.log").read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            print("".join(f"    | {line}\n" for line in tail), end="", flush=True)
    render = subprocess.run(
        [sys.executable, str(SCRIPTS / "results_md.py"), "--records", str(records), "-o", str(page)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    print((render.stdout + render.stderr).strip(), flush=True)
    outcomes.append(Outcome("results_md", render.returncode == 0, 0.0, f"exit status {render.returncode}"))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="each script's reduced settings (about 30 minutes)"
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these steps (see --list)")
    parser.add_argument("--list", action="store_true", help="print the steps and their commands, run nothing")
    parser.add_argument(
        "--step-timeout",
        type=float,
        default=None,
        metavar="MINUTES",
        help="stop a step that runs longer (default: none)",
    )
    parser.add_argument(
        "--records",
        type=Path,
        default=None,
        help="write records here and render DIR/results.md (default data/results/, docs/results.md)",
    )
    args = parser.parse_args(argv)
    names = [step.name for step in STEPS]
    unknown = [name for name in args.only or [] if name not in names]
    if unknown:
        print(f"--only: unknown step {', '.join(unknown)}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    steps = [step for step in STEPS if not args.only or step.name in args.only]
    if args.list:
        for step in steps:
            print(
                f"{step.name:16s} python scripts/{step.script} "
                + " ".join(step.quick if args.quick else step.full)
            )
        return 0
    records = (args.records or ROOT / "data" / "results").resolve()
    page = records / "results.md" if args.records else ROOT / "docs" / "results.md"
    timeout = args.step_timeout * 60 if args.step_timeout else None
    print(
        f"{'quick' if args.quick else 'full'} run of {len(steps)} step(s); records in {records}", flush=True
    )
    outcomes = run_all(steps, args.quick, records, ROOT / "results" / "reproduce", timeout, page)
    failed = [o.step for o in outcomes if not o.passed]
    total = sum(o.seconds for o in outcomes)
    print(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} passed in {minutes(total)}"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
