"""``solver.lr_decay = "cosine"``: every phase's learning rate falls along a half cosine to LR_FLOOR of the
round's rate, resumes exactly from a checkpoint, and a roll-back lowers the whole remaining curve."""

from __future__ import annotations

import math

import pytest
from same_run import assert_same_run
from test_checkpoint import KeepCheckpoints
from test_divergence import Events, Poison

import marketeq
from marketeq.solvers import base
from marketeq.solvers.events import RolledBack

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def cosine(micro):
    return micro.replace(**{"solver.lr_decay": "cosine", "solver.agents_lr": [2e-3],
                            "solver.market_lr": [1e-3], "solver.checkpoint_every": 6})


class LearningRates:
    """Records (phase length, learning rate) of every gradient step, in order."""

    def __init__(self, monkeypatch) -> None:
        self.rates: list[float] = []
        real = base.Solver._descend

        def spy(solver, optimizer, loss):
            self.rates.append(optimizer.param_groups[0]["lr"])
            return real(solver, optimizer, loss)

        monkeypatch.setattr(base.Solver, "_descend", spy)


def _cosine(lr: float, i: int, n: int) -> float:
    return lr * (base.LR_FLOOR + (1 - base.LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * i / n)))


def test_each_phase_follows_the_cosine_from_its_rate_to_the_floor(cosine, monkeypatch):
    spy = LearningRates(monkeypatch)
    result = marketeq.solve(cosine)
    assert result.status == "completed"
    s = cosine.solver
    want = []
    for _ in range(s.rounds):
        want += [_cosine(2e-3, i, 30) for i in range(30)] + [_cosine(1e-3, i, 35) for i in range(35)]
    assert spy.rates == pytest.approx(want, rel=1e-12)
    assert spy.rates[29] < 0.02 * spy.rates[0]  # a phase ends near the floor, the next starts afresh
    assert spy.rates[30] == pytest.approx(1e-3)


def test_constant_keeps_the_rounds_rates(micro, monkeypatch):
    spy = LearningRates(monkeypatch)
    marketeq.solve(micro.replace(**{"solver.rounds": 1}))
    assert set(spy.rates) == {micro.solver.agents_lr[0], micro.solver.market_lr[0]}


def test_a_resumed_run_takes_the_same_decayed_steps(cosine, tmp_path):
    path = tmp_path / "run.h5.ckpt"
    keep = KeepCheckpoints(path)
    want = marketeq.solve(cosine, [keep], checkpoint=path)
    for step in (18, 48):  # agents' iteration 18 and market iteration 18 of round 0
        got = marketeq.solve(cosine, resume=keep.copies[step][1], checkpoint=tmp_path / f"next-{step}.ckpt")
        assert_same_run(got, want)


def test_a_roll_back_halves_the_rest_of_the_curve(cosine, monkeypatch):
    events = Events()
    poison = Poison(monkeypatch, "agents_loss", {25})
    spy = LearningRates(monkeypatch)
    result = marketeq.solve(cosine, [events, poison])
    assert result.status == "completed" and len(events.of(RolledBack)) == 1
    back_to = events.of(RolledBack)[0].to_step
    # steps 0..25 tried (25 failed), then the run goes on from the good state at back_to with half the curve
    resumed = spy.rates[26:26 + (30 - back_to)]
    assert resumed == pytest.approx([0.5 * _cosine(2e-3, i, 30) for i in range(back_to, 30)], rel=1e-12)
    assert spy.rates[26 + 30 - back_to] == pytest.approx(1e-3)  # the market phase starts at its own rate
