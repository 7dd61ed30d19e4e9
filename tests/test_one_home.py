"""One home per concept: the atomic writer, the checked file opener, mean ± standard error and the checkpoint,
resume and roll-back logic are each written once in marketeq/ (and the GUI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOMES = {  # what marks the concept's code -> the one module allowed to hold it
    r"\bos\.replace\(": "marketeq/files.py",  # the atomic writer
    r"\bdef open_checked\b|h5py\.File\(": "marketeq/hdf5/files.py",  # the checked opener
    r"ddof=1\)\s*/\s*(np\.)?sqrt|\.std\(.*ddof=1": "marketeq/results.py",  # mean ± standard error
    r"def (state_dict|load_state_dict|_roll_back|_enter_phase|checkpoint_sink|read_resume)\b":
        "marketeq/solvers/checkpoints.py",  # checkpoint, resume and roll-back
}


def sources() -> dict[str, str]:
    files = [*(ROOT / "marketeq").rglob("*.py"), *(ROOT / "gui").rglob("*.py")]
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in files}


@pytest.mark.parametrize("pattern", list(HOMES))
def test_each_concept_has_one_home(pattern):
    code = {path: "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
            for path, text in sources().items()}
    homes = sorted(path for path, text in code.items() if re.search(pattern, text))
    assert homes == [HOMES[pattern]]


def test_no_file_over_400_lines():
    long = {path: text.count("\n") for path, text in sources().items() if text.count("\n") > 400}
    assert long == {}
