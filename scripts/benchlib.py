"""What the benchmark scripts share: the machine description and their JSON records under data/results/.

Each benchmark writes one record (what it ran, from which commit, on what machine, with which seeds, and the
numbers it measured, per seed where it runs several); ``scripts/results_md.py`` renders all records into
docs/results.md and ``scripts/reproduce.py`` re-runs every script that writes one. ``MARKETEQ_RECORDS``
names another directory for the records (a scratch run that must not replace the committed ones).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marketeq.files import write_bytes_atomically

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "data" / "published"


# --quick in every script that trains: two short rounds on small batches and few test paths. A check that the
# pipeline runs end to end (records, verdicts, rendering), not a measurement of accuracy.
QUICK = {"solver.rounds": 2, "solver.agents_iterations": [40], "solver.market_iterations": [40],
         "solver.batch_size": 256, "solver.market_batch_size": 1024, "run.test_paths": 300}
# The same for the self-stopping schedule (the default): two rounds per grid, two minutes, few test paths.
QUICK_ADAPTIVE = {"solver.max_rounds": 2, "solver.max_minutes": 2.0, "run.test_paths": 300}


def quick_changes(scenario: Any) -> dict[str, Any]:
    """--quick's changes for ``scenario``: short rounds for the rounds schedule, a short budget for the
    adaptive one (the rounds settings would select the rounds schedule instead)."""
    return QUICK_ADAPTIVE if scenario.solver.adaptive else QUICK


def records_dir() -> Path:
    """Where records are written and read: ``$MARKETEQ_RECORDS``, else data/results/ in this checkout."""
    return Path(os.environ.get("MARKETEQ_RECORDS") or ROOT / "data" / "results")


def published(name: str) -> dict[str, Any]:
    """The paper's reported numbers for one scenario (``data/published/<name>.toml``), with their source."""
    import tomllib

    return tomllib.loads((PUBLISHED / f"{name}.toml").read_text())


def machine() -> dict[str, Any]:
    """The machine and software a measurement was taken on."""
    import torch  # here, so that reading and rendering records does not load torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def commit() -> str:
    """The checkout's git commit, with "+changes" when the tree differs from it."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def command() -> str:
    """The command line that ran this script, relative to the checkout."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else str(script)
    return " ".join(["python", shown, *sys.argv[1:]])


class Transcript:
    """Copies everything printed while it is active, so a script can record what it reported."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def __enter__(self) -> Transcript:
        self._stdout = sys.stdout
        sys.stdout = self
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._stdout

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self._stdout.write(text)

    def flush(self) -> None:
        self._stdout.flush()

    @property
    def text(self) -> str:
        return "".join(self.parts)


def save_record(name: str, title: str, body: dict[str, Any], *, seeds: list[int] | None = None,
                per_seed: dict[int, Any] | None = None, quick: bool = False) -> Path:
    """Write ``<records>/<name>.json`` atomically: title, command, commit, machine, date, seeds, ``quick``
    (reduced settings), the raw ``per_seed`` metrics (keyed by seed) when given, and the measured ``body``.

    ``seeds`` lists the seeds the measurement ran with ([] when nothing in it is random).
    """
    record = {"title": title, "command": command(), "commit": commit(), "machine": machine(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "seeds": list(seeds or []),
              "quick": quick, **body}
    if per_seed is not None:
        record["per_seed"] = {str(seed): metrics for seed, metrics in per_seed.items()}
    target = records_dir() / f"{name}.json"
    return write_bytes_atomically(target, json.dumps(record, indent=1, default=float).encode("utf-8"))


def print_table(tables: list[dict[str, Any]], caption: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a table and keep it in ``tables`` (a record's ``tables``)."""
    tables.append({"caption": caption, "columns": columns, "rows": rows})
    print(f"\n{caption}\n  " + " | ".join(columns))
    for row in rows:
        print("  " + " | ".join(str(c) for c in row))


def fmt(x: float) -> str:
    """A measured number in three significant digits."""
    return f"{x:.3g}"
