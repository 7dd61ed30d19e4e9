"""Render docs/results.md from the benchmark records in data/results/*.json.

    python scripts/results_md.py [--records DIR] [-o docs/results.md]

Every record was written by a benchmark script (scripts/bench_*.py, scripts/paper_compare.py, ...) with the
commit, the command that produced it, the machine, the seeds, the date, and its tables; this script only lays
them out. A record without the machine's ``platform`` (rebuilt from an earlier rendering of this page, not by
a script) is marked stale until ``scripts/reproduce.py`` re-runs it; a record taken with ``--quick`` says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchlib import ROOT, records_dir

from marketeq.files import write_bytes_atomically

ORDER = [
    "bench_e1",
    "compare_e1",
    "compare_e2",
    "compare_e3",
    "bench_device",
    "bench_rl",
    "bench_sweep",
    "bench_scale",
    "bench_memory",
    "family_default",
    "outer_schemes",
    "pde_convergence",
    "e2_table",
    "assets_oracle",
    "assets_solver",
    "bench_cli",
]
HEADER = """# Measured results

Every number here was measured by the script named in its section, on the machine it names, and written to
`data/results/<name>.json` with the commit, command, machine and seeds; `python scripts/results_md.py` renders
this page from those records and `python scripts/reproduce.py [--quick]` re-runs every script and then renders
it. The published method's numbers come from `data/published/`; reference values from `docs/model.md`.
"""
STALE = (
    "**stale: re-run by reproduce.py** — this record was rebuilt from an earlier rendering of this page, "
    "not written by the script; no run stands behind its numbers."
)
QUICK = (
    "**quick settings** — measured with `--quick` (fewer seeds, members or iterations): it shows the "
    "pipeline works, not the method's accuracy."
)


def is_stale(record: dict[str, Any]) -> bool:
    """A record the recording script did not write: the script has always recorded the platform."""
    return "platform" not in record.get("machine", {})


def table(caption: str, columns: list[str], rows: list[list[object]]) -> str:
    lines = [f"**{caption}**", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def provenance_line(record: dict[str, Any]) -> str:
    """Command, date, commit, machine and seeds, as one line."""
    m = record["machine"]
    code = record.get("commit") or record.get("git_commit")
    seeds = record.get("seeds")
    return (
        f"`{record['command']}` — {record['date']}, "
        + (
            f"commit {code[:12]}{'+changes' if code.endswith('+changes') else ''}, "
            if code
            else "no commit, "
        )
        + f"{m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), torch {m['torch']}, "
        f"Python {m['python']}" + (f"; seeds {', '.join(map(str, seeds))}" if seeds else "") + "."
    )


def section(record: dict[str, Any]) -> str:
    parts = [f"## {record['title']}", "", provenance_line(record), ""]
    if is_stale(record):
        parts += [STALE, ""]
    if record.get("quick"):
        parts += [QUICK, ""]
    for t in record.get("tables", []):  # {caption, columns, rows}, or {title, header, rows}
        parts += [
            table(t.get("caption", t.get("title", "")), t.get("columns", t.get("header", [])), t["rows"]),
            "",
        ]
    text = record.get("output") or record.get("transcript")
    if text:
        parts += ["```text", text.strip(), "```", ""]
    parts += [f"- {note}" for note in record.get("notes", [])]
    if record.get("figure"):  # stored relative to the checkout; the page lives in docs/
        parts += ["", f"![{record['title']}]({record['figure'].removeprefix('docs/')})"]
    return "\n".join(parts).rstrip() + "\n"


def render(records: dict[str, dict[str, Any]]) -> str:
    """The whole page: the known records in reading order, then any others by name."""
    names = [n for n in ORDER if n in records] + sorted(set(records) - set(ORDER))
    return HEADER + "".join("\n" + section(records[n]) for n in names)


def read_records(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records", type=Path, default=None, help="records directory (default data/results/)"
    )
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "results.md")
    args = parser.parse_args()
    directory = args.records or records_dir()
    records = read_records(directory)
    if not records:
        print(
            f"--records: no *.json records in {directory}; run the benchmark scripts or reproduce.py first",
            file=sys.stderr,
        )
        return 2
    write_bytes_atomically(args.output, render(records).encode("utf-8"))
    stale = [n for n, r in records.items() if is_stale(r)]
    print(
        f"wrote {args.output} from {len(records)} records"
        + (f" ({len(stale)} stale: {', '.join(stale)})" if stale else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
