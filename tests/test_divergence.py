"""Non-finite losses and gradients: roll-back to the last good state with a lower learning rate, a bounded
number of times, then status = diverged; never a NaN metric without that status; gradient clipping."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import marketeq
from marketeq.hdf5 import ResultFileError, read_result, write_result
from marketeq.results import Metric
from marketeq.solvers import rlink
from marketeq.solvers.events import IterationEnded, RolledBack, RunEnded

pytestmark = pytest.mark.usefixtures("single_thread")

class Events:
    def __init__(self) -> None:
        self.events = []

    def on_event(self, event) -> None:
        self.events.append(event)

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]


class Poison:
    """Makes ``rlink.<name>`` (agents_loss or link_loss) non-finite at chosen iterations (0-based, global).

    Also a callback: it follows the run's position, roll-backs included, to know which iteration calls.
    """

    def __init__(self, monkeypatch, name: str, steps, once: bool = True, logged_only: bool = False) -> None:
        self.steps, self.once, self.logged_only = steps, once, logged_only
        self.position, self.hit = 0, set()
        real = getattr(rlink, name)

        def poisoned(*args, **kwargs):
            out = real(*args, **kwargs)
            if self.position not in self.steps or (self.once and self.position in self.hit):
                return out
            self.hit.add(self.position)
            if name != "agents_loss":
                return out * math.nan
            loss, logs = out
            if self.logged_only:  # the reported value only: caught after the step
                return loss, {**logs, "agents/loss": loss * math.nan}
            return loss * math.nan, logs  # the loss itself: caught as a non-finite gradient before the step

        monkeypatch.setattr(rlink, name, poisoned)

    def on_event(self, event) -> None:
        if isinstance(event, IterationEnded):
            self.position = event.step
        elif isinstance(event, RolledBack):
            self.position = event.to_step


class From:
    def __init__(self, first: int) -> None:
        self.first = first

    def __contains__(self, step: int) -> bool:
        return step >= self.first


@pytest.fixture(scope="module")
def clean(micro):
    return marketeq.solve(micro)


def test_a_non_finite_gradient_rolls_back_and_the_run_recovers(micro, clean, monkeypatch):
    seen = Events()
    result = marketeq.solve(micro, [Poison(monkeypatch, "agents_loss", {7}), seen])
    assert result.status == "completed" and "recovered from 1 divergence" in result.message
    [back] = seen.of(RolledBack)
    assert (back.failed_step, back.to_step, back.retry) == (7, 0, 1)
    assert back.reason.startswith("gradient norm")
    history = result.history
    assert list(history["step"]) == list(range(1, micro.solver.total_iterations + 1))
    assert np.isfinite(history["agents/loss"][:30]).all()
    assert all(math.isfinite(m.value) for m in result.metrics.values())
    # Back at the start of the phase with the same noise: the first loss (before any update) is the clean
    # run's; the second differs because the learning rate was halved.
    assert history["agents/loss"][0] == clean.history["agents/loss"][0]
    assert history["agents/loss"][1] != clean.history["agents/loss"][1]


def test_a_roll_back_in_the_market_phase_rebuilds_the_cached_roll_out(micro, clean, monkeypatch):
    """Round 1's market phase starts at step 95; its good state at step 100 is market iteration 5, between
    two refreshes of the agents' cached roll-out; the poisoned step is 103."""
    seen = Events()
    result = marketeq.solve(micro, [Poison(monkeypatch, "link_loss", {103}), seen])
    [back] = seen.of(RolledBack)
    assert (back.failed_step, back.to_step) == (103, 100) and result.status == "completed"
    index = list(result.history["step"]).index(101)
    assert result.history["market/loss"][index] == clean.history["market/loss"][index]
    np.testing.assert_array_equal(result.history["market/loss"][:100], clean.history["market/loss"][:100])


def test_persistent_nan_ends_as_diverged_after_the_allowed_retries(micro, monkeypatch, tmp_path):
    seen = Events()
    poison = Poison(monkeypatch, "agents_loss", From(11), once=False, logged_only=True)
    result = marketeq.solve(micro, [poison, seen])
    assert result.status == "diverged" and "diverged at iteration 11: agents/loss = nan" in result.message
    assert "after 3 of 3 roll-backs" in result.message
    assert [e.retry for e in seen.of(RolledBack)] == [1, 2, 3]
    assert seen.of(RunEnded)[0].step == 11 and result.metrics == {}
    # the weights and the evaluation are those of the last good state, finite
    assert all(np.isfinite(v).all() for params in result.weights.values() for v in params.values())
    assert np.isfinite(result.paths.S).all()
    back = read_result(write_result(result, tmp_path / "diverged.h5"))
    assert back.status == "diverged" and back.metrics == {} and "iteration 11" in back.message


def test_without_retries_the_first_nan_ends_the_run(micro, monkeypatch):
    seen = Events()
    result = marketeq.solve(micro.replace(**{"solver.divergence_retries": 0}),
                            [Poison(monkeypatch, "agents_loss", {6}, logged_only=True), seen])
    assert result.status == "diverged" and "diverged at iteration 6" in result.message
    assert seen.of(RolledBack) == []


def test_gradient_clipping_bounds_the_norm_of_each_step(micro):
    from marketeq.api import _runtime
    from marketeq.solvers.rlink import ReinforcementLinkSolver

    norms = {}
    for clip in (0.0, 1e-3):
        scenario, runtime = _runtime(micro.replace(**{"solver.grad_clip": clip}), None, None)
        solver = ReinforcementLinkSolver(scenario, runtime)
        optimizer = torch.optim.Adam(solver.policy.parameters(), lr=1e-3)
        solver._agents_step(optimizer, clearing_weight=1.0)
        grads = [p.grad for p in solver.policy.parameters() if p.grad is not None]
        norms[clip] = float(torch.nn.utils.get_total_norm(grads))
    assert norms[0.0] > 1e-2 and norms[1e-3] == pytest.approx(1e-3, rel=1e-6)


def test_a_non_finite_metric_turns_the_result_into_diverged(micro, monkeypatch):
    from marketeq import api

    real = api.compute_metrics

    def overflowing(*args, **kwargs):
        return {**real(*args, **kwargs), "terminal": Metric(math.inf, math.nan)}

    monkeypatch.setattr(api, "compute_metrics", overflowing)
    result = marketeq.solve(micro.replace(**{"solver.rounds": 1}))
    assert result.status == "diverged" and result.metrics == {} and "terminal" in result.message


def test_a_nan_metric_is_never_written_without_the_diverged_status(clean, tmp_path):
    bad = dataclasses.replace(clean, metrics={**clean.metrics, "sum_J": Metric(math.nan, math.nan)})
    with pytest.raises(ResultFileError, match="metric 'sum_J' is nan but the status is 'completed'"):
        write_result(bad, tmp_path / "bad.h5")
    assert list(tmp_path.iterdir()) == []
    bad.status = "diverged"
    assert read_result(write_result(bad, tmp_path / "ok.h5")).status == "diverged"


def test_the_roll_back_state_survives_a_checkpoint(micro, monkeypatch, tmp_path):
    """Stopped at step 25 and resumed, a NaN at step 27 rolls back to the good state of step 20 kept in the
    checkpoint: the run ends exactly like an uninterrupted one with the same NaN."""
    from marketeq.solvers.events import RunControl

    class StopAt:
        def on_event(self, event) -> None:
            if isinstance(event, IterationEnded) and event.step == 25:
                control.request_stop()

    want = marketeq.solve(micro, [Poison(monkeypatch, "agents_loss", {27})])
    control = RunControl()
    marketeq.solve(micro, [StopAt()], control, checkpoint=tmp_path / "run.ckpt")
    poison, seen = Poison(monkeypatch, "agents_loss", {27}), Events()
    poison.position = 25
    got = marketeq.solve(micro, [poison, seen], resume=tmp_path / "run.ckpt")
    assert [(e.failed_step, e.to_step) for e in seen.of(RolledBack)] == [(27, 20)]
    assert got.status == want.status == "completed" and got.message == want.message
    for net, params in want.weights.items():
        for key, value in params.items():
            np.testing.assert_array_equal(got.weights[net][key], value)


def test_the_cli_reports_a_diverged_run_and_drops_its_checkpoint(micro, monkeypatch, tmp_path, capsys):
    from marketeq.cli import main
    from marketeq.hdf5 import checkpoint_path
    from marketeq.scenario import scenario_to_toml

    toml, output = tmp_path / "micro.toml", tmp_path / "out.h5"
    toml.write_text(scenario_to_toml(micro.replace(**{"solver.divergence_retries": 1})), encoding="utf-8")
    real = rlink.agents_loss

    def always_nan(*args, **kwargs):
        loss, logs = real(*args, **kwargs)
        return loss, {**logs, "agents/loss": loss * math.nan}

    monkeypatch.setattr(rlink, "agents_loss", always_nan)
    assert main(["run", str(toml), "-o", str(output), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "run diverged: diverged at iteration 0: agents/loss = nan" in err and "solver.grad_clip" in err
    assert read_result(output).status == "diverged" and not checkpoint_path(output).exists()
