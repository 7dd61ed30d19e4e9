"""How long an interrupted run takes to put its partial result on disk, against the number of agents.

For each N: ``marketeq run`` on the quickstart market with one population of N agents (bench_scale's), in a
fresh process; SIGTERM (or SIGINT) ``--after`` seconds after start; printed: the seconds from the signal
until the result file exists (the partial result, written uncompressed first) and until the process ends
(after the oracle comparison and the compressed rewrite). The target is a result on disk within 30 s at any N.

    python scripts/bench_interrupt.py --sizes 10 100 1000 --after 60
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_scale import _env, population_toml
from benchlib import ROOT


def interrupt_once(scenario: Path, out: Path, after: float, signum: int) -> dict[str, float | int | None]:
    args = [sys.executable, "-m", "marketeq", "run", str(scenario), "-o", str(out), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    sent = on_disk = None
    while proc.poll() is None:
        now = time.perf_counter()
        if sent is None and now - started >= after:
            proc.send_signal(signum)
            sent = now
        if sent is not None and on_disk is None and out.exists():
            on_disk = now
        time.sleep(0.05)
    ended = time.perf_counter()
    if sent is not None and on_disk is None and out.exists():
        on_disk = ended
    return {"signal_after_s": None if sent is None else sent - started,
            "to_file_s": None if sent is None or on_disk is None else on_disk - sent,
            "to_exit_s": None if sent is None else ended - sent, "returncode": proc.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--after", type=float, default=60.0, help="seconds from start to the signal")
    parser.add_argument("--signal", choices=["SIGTERM", "SIGINT"], default="SIGTERM")
    args = parser.parse_args(argv)
    print("| N | signal after s | partial result on disk after s | process ended after s | exit code |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            row = interrupt_once(population_toml(n, Path(tmp)), Path(tmp) / f"run_{n}.h5", args.after,
                                 getattr(signal, args.signal))
            fmt = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
            print(f"| {n} | {fmt(row['signal_after_s'])} | {fmt(row['to_file_s'])} | {fmt(row['to_exit_s'])} "
                  f"| {row['returncode']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
