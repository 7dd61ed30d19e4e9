"""Render docs/results.md from the benchmark records in docs/results/*.json.

    python scripts/results_md.py

Every record was written by a benchmark script (scripts/bench_*.py, scripts/paper_compare.py) with the command
that produced it, the machine, the date, and its tables; this script only lays them out.
"""

from __future__ import annotations

import json
import sys

from benchlib import RECORDS, ROOT

ORDER = ["bench_e1", "compare_e1", "compare_e2", "compare_e3", "bench_rl", "bench_sweep", "bench_scale",
         "bench_memory"]
HEADER = """# Measured results

Every number here was measured by the script named in its section, on the machine it names, and written to
`docs/results/<name>.json`; `python scripts/results_md.py` renders this page from those records. Re-run a script
to refresh its section. Reference values and the published method's numbers are those of `docs/model.md` and the
paper scenarios (`scenarios/paper_e*.toml`).
"""


def table(caption: str, columns: list[str], rows: list[list[object]]) -> str:
    lines = [f"**{caption}**", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def section(record: dict) -> str:
    m = record["machine"]
    parts = [f"## {record['title']}", "",
             f"`{record['command']}` — {record['date']}, {m['cpu']}, {m['cores']} cores "
             f"({m['torch_threads']} torch threads), torch {m['torch']}, Python {m['python']}.", ""]
    for t in record.get("tables", []):  # {caption, columns, rows}, or {title, header, rows}
        parts += [table(t.get("caption", t.get("title", "")), t.get("columns", t.get("header", [])), t["rows"]), ""]
    text = record.get("output") or record.get("transcript")
    if text:
        parts += ["```text", text.strip(), "```", ""]
    parts += [f"- {note}" for note in record.get("notes", [])]
    if record.get("figure"):  # stored relative to the checkout; the page lives in docs/
        parts += ["", f"![{record['title']}]({record['figure'].removeprefix('docs/')})"]
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    records = {p.stem: json.loads(p.read_text()) for p in sorted(RECORDS.glob("*.json"))}
    names = [n for n in ORDER if n in records] + sorted(set(records) - set(ORDER))
    text = HEADER + "".join("\n" + section(records[n]) for n in names)
    out = ROOT / "docs" / "results.md"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} from {len(names)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
