"""Checkpoints: exact resume from any saved position, partial results on a stop, and bad checkpoint files."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from same_run import assert_same_run

import marketeq
from marketeq import hdf5
from marketeq.cli import main
from marketeq.hdf5 import ResultFileError, checkpoint_path, read_checkpoint, write_checkpoint, write_result
from marketeq.scenario import scenario_to_toml
from marketeq.solvers.events import CheckpointSaved, IterationEnded, RunControl

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("single_thread")

class KeepCheckpoints:
    """Copies the checkpoint file aside each time the solver saves one."""

    def __init__(self, path: Path) -> None:
        self.path, self.copies = path, {}

    def on_event(self, event) -> None:
        if isinstance(event, CheckpointSaved):
            copy = self.path.with_name(f"at-{event.step}.ckpt")
            shutil.copyfile(self.path, copy)
            self.copies[event.step] = (event, copy)


class StopAt:
    def __init__(self, step: int, control: RunControl) -> None:
        self.step, self.control = step, control

    def on_event(self, event) -> None:
        if isinstance(event, IterationEnded) and event.step == self.step:
            self.control.request_stop()


@pytest.fixture(scope="module")
def scenario(micro):
    # Fresh networks each round: the resumed run must also restore torch's global generator exactly.
    return micro.replace(**{"solver.checkpoint_every": 6, "solver.warm_start": False})


@pytest.fixture(scope="module")
def reference(scenario, tmp_path_factory, single_thread):
    """The uninterrupted run, with a copy of every checkpoint it wrote."""
    path = tmp_path_factory.mktemp("reference") / "run.h5.ckpt"
    keep = KeepCheckpoints(path)
    result = marketeq.solve(scenario, [keep], checkpoint=path)
    return result, keep.copies


def test_checkpoints_at_phase_starts_and_every_n_iterations(scenario, reference):
    result, copies = reference
    phase_starts = {0, 30, 65, 95}
    assert set(copies) == phase_starts | set(range(0, scenario.solver.total_iterations, 6))
    event, path = copies[72]
    assert (event.round, event.phase, event.iteration) == (1, "agents", 7)
    saved = read_checkpoint(path)
    assert saved.step == 72 and saved.scenario == scenario and saved.solver == "rlink"
    assert list(saved.state["history"]["step"]) == list(range(1, 73))
    np.testing.assert_array_equal(saved.state["history"]["agents/loss"], result.history["agents/loss"][:72])


@pytest.mark.parametrize("step", [12, 42, 65, 114], ids=lambda s: f"step{s}")
def test_resume_from_any_checkpoint_ends_bitwise_like_the_uninterrupted_run(scenario, reference, step):
    """Mid-phase; between market-cache refreshes (42 and 114 are market iterations 12 and 19); at a phase
    start; in a round whose networks were rebuilt from torch's generator."""
    want, copies = reference
    path = copies[step][1]
    got = marketeq.solve(scenario, resume=path, checkpoint=path.with_suffix(".next"))
    assert got.provenance["resumed_from_step"] == step
    assert_same_run(got, want)


def test_a_stop_writes_a_checkpoint_and_a_partial_result_that_resumes_exactly(scenario, reference, tmp_path):
    want, _ = reference
    path = tmp_path / "run.h5.ckpt"
    control = RunControl()
    partial = marketeq.solve(scenario, [StopAt(47, control)], control, checkpoint=path)
    assert partial.status == "interrupted" and "47" in partial.message
    assert partial.history["step"][-1] == 47 and np.isfinite(partial.metrics["sum_J"].value)
    assert read_checkpoint(path).step == 47
    resumed = marketeq.solve(scenario, resume=path)
    assert_same_run(resumed, want)


def test_resume_refuses_a_checkpoint_of_another_run(scenario, reference):
    _, copies = reference
    with pytest.raises(ResultFileError, match=r"another run \(run\.seed = 0 there, 5 here\)"):
        marketeq.solve(scenario, resume=copies[12][1], seed=5)


def test_checkpoint_holds_plain_arrays_with_checksums(reference):
    _, copies = reference
    with h5py.File(copies[42][1], "r") as f:
        assert f.attrs["format"] == "marketeq-checkpoint" and f.attrs["step"] == 42
        assert f.attrs["phase"] == "market" and f.attrs["iteration"] == 12
        assert f["state/modules/policy"]["net.gains.0.weight"].dtype == np.float64
        datasets = []
        f.visititems(lambda name, obj: datasets.append((name, obj)) if isinstance(obj, h5py.Dataset)
                     else None)
        assert len(datasets) > 50
        for name, dset in datasets:
            assert dset.dtype.kind in "biuf" or h5py.check_string_dtype(dset.dtype), name
            assert dset.fletcher32 or dset.ndim == 0 or dset.size == 0, name
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "marketeq").rglob("*.py"))
    assert not re.search(r"import pickle|pickle\.loads?\(|allow_pickle=True|torch\.load\(", sources)


def test_state_round_trips_through_a_checkpoint_file(micro, tmp_path):
    from marketeq.api import _runtime
    from marketeq.solvers.rlink import ReinforcementLinkSolver

    scenario, runtime = _runtime(micro, None, None)
    state = ReinforcementLinkSolver(scenario, runtime).state_dict()
    path = write_checkpoint(tmp_path / "s.ckpt", state, scenario_toml=scenario_to_toml(scenario),
                            solver="rlink", provenance={"seed": 0})

    def same(a, b, where=""):
        if isinstance(a, dict):
            assert sorted(a) == sorted(b), where
            for key in a:
                same(a[key], b[key], f"{where}/{key}")
        elif isinstance(a, str):
            assert a == b, where
        else:
            assert np.asarray(a).dtype == b.dtype and np.array_equal(a, b, equal_nan=True), where

    same(state, read_checkpoint(path).state)


def test_an_aborted_checkpoint_write_keeps_the_previous_checkpoint(reference, tmp_path, monkeypatch):
    """A second Ctrl-C in the middle of a write: the previous checkpoint stays whole, no temporary is left."""
    _, copies = reference
    target = tmp_path / "run.h5.ckpt"
    shutil.copyfile(copies[12][1], target)
    before = target.read_bytes()
    saved = read_checkpoint(target)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hdf5.checkpoints, "_write_tree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(target, saved.state, scenario_toml=saved.scenario_toml, solver="rlink",
                         provenance={})
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["run.h5.ckpt"]


# --- bad checkpoint files ------------------------------------------------------------------------------


def _flip_array_byte(path: Path) -> None:
    with h5py.File(path, "r") as f:
        dset = f["state/modules/policy/net.gains.0.weight"]
        offset = dset.id.get_offset() or dset.id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 3] ^= 0xFF
    path.write_bytes(bytes(data))


def _damage(kind: str, path: Path, result_file: Path) -> None:
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif kind == "bit flip":
        _flip_array_byte(path)
    elif kind == "a result file":
        shutil.copyfile(result_file, path)
    elif kind == "foreign hdf5":
        path.unlink()
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    elif kind == "newer version":
        with h5py.File(path, "r+") as f:
            f.attrs["schema_version"] = 99
    elif kind == "missing state":
        with h5py.File(path, "r+") as f:
            del f["state/modules"]
    elif kind == "text":
        path.write_text("step = 3\n")
    elif kind == "empty":
        path.write_bytes(b"")


DAMAGES = {"truncated": "truncated", "bit flip": "damaged", "a result file": "not a marketeq checkpoint",
           "foreign hdf5": "not a marketeq checkpoint", "newer version": "schema_version 99",
           "missing state": "/state/modules", "text": "not an HDF5 file", "empty": "empty file"}


@pytest.fixture(scope="module")
def result_file(reference, tmp_path_factory):
    return write_result(reference[0], tmp_path_factory.mktemp("result") / "done.h5")


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_damaged_checkpoints_are_one_line_errors(kind, reference, result_file, scenario, tmp_path):
    output = tmp_path / "out.h5"
    ckpt = checkpoint_path(output)
    shutil.copyfile(reference[1][12][1], ckpt)
    _damage(kind, ckpt, result_file)
    with pytest.raises(ResultFileError) as info:
        read_checkpoint(ckpt)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(ckpt)) and DAMAGES[kind] in message, message
    # the same through `marketeq run --resume`: exit 2, one line, nothing trained or written
    toml = tmp_path / "s.toml"
    toml.write_text(scenario_to_toml(scenario), encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["run", str(toml), "-o", str(output), "--resume", "--quiet"]) == 2
    assert err.getvalue().count("\n") == 1 and DAMAGES[kind] in err.getvalue() and not output.exists()


def test_show_names_a_checkpoint_as_such(reference, capsys):
    assert main(["show", str(reference[1][12][1])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a marketeq checkpoint, not a result file" in err and "--resume" in err


def test_an_unwritable_checkpoint_stops_the_run_before_training(micro, tmp_path):
    from marketeq.solvers.events import RunEnded

    seen = []
    with pytest.raises(ResultFileError, match="does not exist"):
        marketeq.solve(micro, [type("Seen", (), {"on_event": lambda self, e: seen.append(e)})()],
                       checkpoint=tmp_path / "missing" / "run.ckpt")
    assert not [e for e in seen if isinstance(e, IterationEnded)]
    assert isinstance(seen[-1], RunEnded) and seen[-1].status == "failed"
    assert "does not exist" in seen[-1].message


def test_run_without_resume_refuses_to_overwrite_an_unfinished_run(reference, scenario, tmp_path, capsys):
    output = tmp_path / "out.h5"
    shutil.copyfile(reference[1][12][1], checkpoint_path(output))
    toml = tmp_path / "s.toml"
    toml.write_text(scenario_to_toml(scenario), encoding="utf-8")
    assert main(["run", str(toml), "-o", str(output), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unfinished run" in err and "--resume" in err
    assert read_checkpoint(checkpoint_path(output)).step == 12 and not output.exists()


def test_resume_of_a_completed_result_is_refused(result_file, scenario, tmp_path, capsys):
    output = tmp_path / "done.h5"
    shutil.copyfile(result_file, output)
    toml = tmp_path / "s.toml"
    toml.write_text(scenario_to_toml(scenario), encoding="utf-8")
    assert main(["run", str(toml), "-o", str(output), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to resume" in err


def test_exact_link_resumes_bitwise_between_market_refreshes(micro, tmp_path):
    """Power costs solve the link for mu at each roll-out refresh, with the sigma of that moment: a resume
    between refreshes must solve it again with the same sigma."""
    agents = [{"gamma": 1.0, "xi": 2.0}, {"gamma": 1.5, "xi": -0.5}, {"gamma": 2.0, "xi": -1.5}]
    scenario = micro.replace(**{"frictions.q": 1.5, "solver.checkpoint_every": 6}, agents=agents)
    path = tmp_path / "run.h5.ckpt"
    keep = KeepCheckpoints(path)
    want = marketeq.solve(scenario, [keep], checkpoint=path)
    step = 42  # market iteration 12 of round 0: two iterations after a refresh
    got = marketeq.solve(scenario, resume=keep.copies[step][1], checkpoint=tmp_path / "next.ckpt")
    assert_same_run(got, want)
    assert "market/mu_fit" in want.history
