"""Benchmark: how long the light commands take from a cold interpreter, as a user types them.

    python scripts/bench_cli.py [--file RESULT.h5] [--repeat 10] [--quick] [--record]

Runs ``python -m marketeq --help``, ``validate scenarios/quickstart.toml`` and ``show FILE`` (by default the
quickstart oracle, written once to a temporary directory) ``--repeat`` times each, in fresh processes of
this interpreter (not a launcher shim, which adds its own start-up), and prints the median and range of
the wall times, next to an empty ``python -c pass`` for the interpreter's own start-up. The target is
<= 0.5 s each on 2 cores; the test suite checks that none of them imports torch. --quick: 3 runs each;
--record writes data/results/bench_cli.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"


def wall_times(args: list[str], repeat: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's marketeq
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="result file to show (default: the quickstart oracle)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per command (default 10, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="3 runs of each command")
    parser.add_argument("--record", action="store_true", help="write data/results/bench_cli.json")
    args = parser.parse_args()
    args.repeat = args.repeat or (3 if args.quick else 10)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        result = args.file
        if result is None:
            result = Path(folder) / "oracle.h5"
            wall_times(["-m", "marketeq", "oracle", str(QUICKSTART), "-o", str(result)], 1)
        commands = {"python -c pass": ["-c", "pass"],
                    "marketeq --help": ["-m", "marketeq", "--help"],
                    "marketeq validate quickstart": ["-m", "marketeq", "validate", str(QUICKSTART)],
                    f"marketeq show {result.name}": ["-m", "marketeq", "show", str(result)]}
        print(f"{'command':<32} {'median':>8} {'min':>7} {'max':>7}   "
              f"({args.repeat} runs, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f})")
        for name, command in commands.items():
            times = wall_times(command, args.repeat)
            print(f"{name:<32} {statistics.median(times):7.3f}s {min(times):6.3f}s {max(times):6.3f}s")
            rows.append([name, f"{statistics.median(times):.3f}", f"{min(times):.3f}", f"{max(times):.3f}"])
    if args.record:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchlib import save_record

        caption = (f"wall time of a fresh process, seconds over {args.repeat} runs ({os.cpu_count()} CPUs, "
                   f"load {os.getloadavg()[0]:.1f} at the end); target <= 0.5 s each")
        path = save_record("bench_cli", "Start-up time of the light commands (bench_cli)", {
            "tables": [{"caption": caption, "columns": ["command", "median", "min", "max"], "rows": rows}]},
            seeds=[], quick=args.quick)
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
