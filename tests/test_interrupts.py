"""`marketeq run` under SIGKILL, SIGINT and a double SIGTERM, in real subprocesses.

A killed run resumed with --resume ends bitwise like an uninterrupted one (CPU, float64, one thread on
both sides); a first interrupt leaves a checkpoint and a partial result; a second one aborts at once and
leaves every file whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from same_run import assert_same_run

import marketeq
from marketeq.cli import main
from marketeq.hdf5 import checkpoint_path, read_checkpoint, read_result
from marketeq.scenario import scenario_to_toml
from marketeq.solvers import base
from marketeq.solvers.events import IterationEnded, RunControl

ROOT = Path(__file__).resolve().parents[1]
# One torch and one BLAS thread, as the in-process reference (single_thread): the comparison is bitwise.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def scenario(micro):
    return micro.replace(**{"solver.checkpoint_every": 5})


@pytest.fixture(scope="module")
def reference(scenario, single_thread):
    return marketeq.solve(scenario)


@pytest.fixture
def files(scenario, tmp_path):
    toml = tmp_path / "micro.toml"
    toml.write_text(scenario_to_toml(scenario), encoding="utf-8")
    out = tmp_path / "out.h5"
    return toml, out, checkpoint_path(out)


def start(toml: Path, out: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "marketeq", "run", str(toml), "-o", str(out), "--quiet", *extra]
    return subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def wait_for_checkpoint(proc: subprocess.Popen, path: Path, min_step: int, timeout: float = 120) -> int:
    """Poll the checkpoint (replaced atomically, so always whole) until it is at ``min_step`` or later."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before step {min_step}: {proc.stderr.read()}")
        try:
            with h5py.File(path, "r") as f:
                step = int(f.attrs["step"])
            if step >= min_step:
                return step
        except (OSError, KeyError):  # not written yet
            pass
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no checkpoint at step {min_step} within {timeout} s")


def test_sigkill_then_resume_ends_bitwise_like_the_uninterrupted_run(files, reference):
    toml, out, ckpt = files
    proc = start(toml, out)
    wait_for_checkpoint(proc, ckpt, 40)
    proc.kill()
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    done = subprocess.run([sys.executable, "-m", "marketeq", "run", str(toml), "-o", str(out), "--quiet",
                           "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = read_result(out)
    assert got.provenance["resumed_from_step"] >= 40
    assert_same_run(got, reference)
    assert not ckpt.exists()  # a completed result supersedes its checkpoint


def test_sigint_leaves_a_partial_result_and_a_checkpoint_to_resume(files, reference, capsys):
    toml, out, ckpt = files
    proc = start(toml, out)
    wait_for_checkpoint(proc, ckpt, 30)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 1
    stderr = proc.stderr.read()
    assert "stopping after this iteration" in stderr and "run interrupted" in stderr and "--resume" in stderr
    partial = read_result(out)
    stopped = int(partial.history["step"][-1])
    assert partial.status == "interrupted" and partial.message == f"stopped at iteration {stopped}"
    assert np.isfinite(partial.metrics["sum_J"].value) and read_checkpoint(ckpt).step == stopped
    assert main(["run", str(toml), "-o", str(out), "--resume", "--quiet"]) == 0  # in-process, one thread
    assert_same_run(read_result(out), reference)
    assert not ckpt.exists()


def test_a_second_sigterm_aborts_at_once_and_leaves_every_file_whole(scenario, tmp_path):
    # A large test set makes the evaluation and the result write after the first signal long enough for
    # the second one to land in them.
    toml = tmp_path / "big.toml"
    toml.write_text(scenario_to_toml(scenario.replace(**{"run.test_paths": 500_000})), encoding="utf-8")
    out = tmp_path / "out.h5"
    ckpt = checkpoint_path(out)
    proc = start(toml, out)
    wait_for_checkpoint(proc, ckpt, 20)
    proc.send_signal(signal.SIGTERM)
    assert any("stopping after this iteration" in proc.stderr.readline() for _ in range(20))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    assert "aborted by SIGTERM" in proc.stderr.read()
    assert read_checkpoint(ckpt).step >= 20
    assert not out.exists() or read_result(out).status == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) in (["big.toml", "out.h5.ckpt"],
                                                          ["big.toml", "out.h5", "out.h5.ckpt"])


def test_a_stopped_run_is_returned_before_its_oracle_and_compared_after(scenario):
    from marketeq.api import oracle_paths, with_oracle
    from marketeq.solvers.events import RunControl

    control = RunControl()
    control.request_stop()
    partial = marketeq.solve(scenario, control=control)
    assert partial.status == "interrupted" and partial.oracle_paths is None
    assert not any(name.startswith("oracle/") for name in partial.metrics)
    compared = with_oracle(partial)
    name, expected = oracle_paths(scenario)
    assert compared.oracle_name == name and compared.status == "interrupted"
    np.testing.assert_allclose(compared.oracle_paths.sigma, expected.sigma, rtol=0, atol=1e-12)
    assert compared.metrics["sum_J"] == partial.metrics["sum_J"]
    assert np.isfinite(compared.metrics["oracle/sigma_sup_rel_error"].value)
    assert with_oracle(compared) is compared


def test_a_result_written_without_gzip_reads_back_the_same(reference, tmp_path):
    from marketeq.hdf5 import write_result

    plain, packed = write_result(reference, tmp_path / "plain.h5", compress=False), \
        write_result(reference, tmp_path / "packed.h5")
    assert_same_run(read_result(plain), read_result(packed))

    def filters(path: Path) -> set:
        found = set()
        with h5py.File(path, "r") as f:
            f.visititems(lambda _, obj: found.add(obj.compression) if isinstance(obj, h5py.Dataset) else None)
        return found

    assert filters(plain) == {None} and "gzip" in filters(packed)


class StopInside(RunControl):
    """Asks to stop in the middle of the iteration after step ``at``: armed by IterationEnded(step = at), it
    answers the ``after``-th stop point's question with a stop (the boundary's poll sees nothing before)."""

    def __init__(self, at: int, after: int) -> None:
        super().__init__()
        self.at, self.after, self.armed, self.asked = at, after, False, 0

    def on_event(self, event: object) -> None:
        self.armed |= isinstance(event, IterationEnded) and event.step == self.at

    @property
    def stop_requested(self) -> bool:
        if self.armed:
            self.asked += 1
            if self.asked >= self.after:
                self.request_stop()
        return super().stop_requested


@pytest.mark.parametrize("phase_step, after", [(7, 40), (40, 5)])  # agents' backward; market roll-out
def test_a_stop_inside_an_iteration_drops_it_and_resumes_exactly(scenario, reference, tmp_path, monkeypatch,
                                                                 phase_step, after):
    monkeypatch.setattr(base, "STOP_WITHIN_AFTER_S", 0.0)  # stop points in every (short) iteration
    control = StopInside(phase_step, after)
    ckpt, first = tmp_path / "run.ckpt", []
    stopped = marketeq.solve(scenario, [control], control, checkpoint=ckpt, partial=first.append)
    assert control.asked == after  # the stop came from a stop point inside the iteration
    assert stopped.status == "interrupted" and stopped.message == f"stopped at iteration {phase_step}"
    assert int(stopped.history["step"][-1]) == phase_step and read_checkpoint(ckpt).step == phase_step
    assert first[0].paths is None and first[0].metrics == {} and "not evaluated" in first[0].message
    assert np.isfinite(stopped.metrics["sum_J"].value)
    assert_same_run(marketeq.solve(scenario, checkpoint=ckpt, resume=ckpt), reference)
