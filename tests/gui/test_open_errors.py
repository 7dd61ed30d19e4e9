"""The app's Open on files that are not results: the engine's one-line message, and nothing is shown."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import marketeq
from marketeq.hdf5 import write_checkpoint
from marketeq.scenario import scenario_to_toml


@pytest.fixture(scope="module")
def files(tmp_path_factory, quickstart_fast):
    from marketeq.api import _runtime
    from marketeq.solvers.rlink import ReinforcementLinkSolver

    folder = tmp_path_factory.mktemp("open")
    good = marketeq.write_result(marketeq.oracle_result(quickstart_fast), folder / "good.h5")
    data = good.read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 3])
    (folder / "newer.h5").write_bytes(data)
    with h5py.File(folder / "newer.h5", "r+") as f:
        f.attrs["schema_version"] = 7
    with h5py.File(folder / "foreign.h5", "w") as f:
        f["temperature"] = np.arange(4.0)
    scenario, runtime = _runtime(quickstart_fast, "cpu", None)
    state = ReinforcementLinkSolver(scenario, runtime).state_dict()
    write_checkpoint(folder / "run.h5.ckpt", state, scenario_toml=scenario_to_toml(scenario), solver="rlink",
                     provenance={})
    return folder


@pytest.mark.parametrize("name, fragment", [
    ("truncated.h5", "truncated"),
    ("newer.h5", "schema_version 7 is not supported"),
    ("foreign.h5", "not a marketeq result file"),
    ("run.h5.ckpt", "a marketeq checkpoint, not a result file"),
])
def test_open_shows_one_line_and_keeps_nothing(qtbot, files, name, fragment):
    from gui.results_panel import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    assert panel.open_file(files / name) is None and panel.result is None
    message = panel.error.text()
    assert "\n" not in message and fragment in message and str(files / name) in message
    assert panel.open_file(files / "good.h5") is not None and panel.result.status == "completed"
