"""What the benchmark scripts share: the machine description and their JSON records under docs/results/.

Each benchmark writes one record (what it ran, on what, and the numbers it measured);
``scripts/results_md.py`` renders all records into docs/results.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from marketeq.files import write_bytes_atomically

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "results"


def machine() -> dict[str, Any]:
    """The machine and software a measurement was taken on."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


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


def save_record(name: str, title: str, body: dict[str, Any]) -> Path:
    """Write ``docs/results/<name>.json`` atomically: title, command, machine, time and the measured ``body``."""
    RECORDS.mkdir(parents=True, exist_ok=True)
    record = {"title": title, "command": command(), "machine": machine(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), **body}
    target = RECORDS / f"{name}.json"
    return write_bytes_atomically(target, json.dumps(record, indent=1, default=float).encode("utf-8"))
