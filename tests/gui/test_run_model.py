"""The Qt-free run model: events in, history columns, curves, status and progress out."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np

import marketeq
from gui.run_model import Columns, RunModel, format_seconds

K, N = 10, 3


def snapshot(step: int, value: float = 1.0) -> marketeq.Snapshot:
    t = np.linspace(0, 0.2, K + 1)
    return marketeq.Snapshot(step, t, value + 0 * t, 0.5 + t, 0.4 + t, t, np.ones((K + 1, N)),
                             np.zeros((K + 1, N)), {"eval/clearing": 1e-3, "eval/terminal": 1e-4})


def feed(model: RunModel, steps: int = 6) -> None:
    model.apply(marketeq.RunStarted("tiny", "rlink", 2, 2 * steps, N, ("a", "b", "c")))
    step = 0
    for r in range(2):
        for phase in ("agents", "market"):
            model.apply(marketeq.PhaseStarted(r, phase, steps // 2))
            for i in range(steps // 2):
                step += 1
                losses = {"agents/loss": -0.1 * step} if phase == "agents" else {"market/loss": 1.0 / step}
                model.apply(marketeq.IterationEnded(r, phase, i, step, losses, 0.1 * step))
            model.apply(snapshot(step))
            model.apply(marketeq.PhaseEnded(r, phase, {}))


def test_columns_grow_and_leave_nan_where_a_row_lacks_a_key():
    columns = Columns(capacity=2)
    for step in range(5):
        columns.append(step, {"a": float(step)} if step % 2 else {"b": 1.0})
    assert columns.n == 5
    np.testing.assert_array_equal(columns.steps, [0, 1, 2, 3, 4])
    a = columns.column("a")
    assert np.isnan(a[0]) and a[1] == 1.0 and np.isnan(a[2]) and a[3] == 3.0
    assert columns.column("missing") is None


def test_events_build_history_curves_status_and_progress():
    model = RunModel()
    assert model.status == "idle" and model.progress_text() == "ready"
    before = model.version
    feed(model)
    assert model.version > before and model.status == "running"
    assert model.losses.n == 12 and model.evals.n == 4 and model.snapshots == 4
    agents = model.losses.column("agents/loss")
    assert np.isfinite(agents[:3]).all() and np.isnan(agents[3:6]).all()  # market phase: a gap, not a 0
    assert model.curves.sigma.shape == (K + 1,) and model.curves.phidot_path.shape == (K + 1, N)
    assert model.agent_names == ("a", "b", "c") and model.round == 1 and model.phase == "market"
    assert model.fraction == 1.0
    text = model.progress_text()
    assert "round 2/2" in text and "market iteration 3/3" in text and "step 12/12" in text
    model.apply(marketeq.RunEnded("interrupted", 12, "stopped at iteration 12"))
    assert model.status == "evaluating" and model.message == "stopped at iteration 12"


def test_a_roll_back_drops_the_replayed_steps():
    model = RunModel()
    feed(model)
    model.apply(marketeq.RolledBack(failed_step=12, to_step=7, reason="market/loss = nan", retry=1))
    assert model.losses.n == 7 and list(model.losses.steps) == list(range(1, 8))
    assert list(model.evals.steps) == [3, 6] and model.step == 7 and "rolled back to step 7" in model.message
    model.apply(marketeq.IterationEnded(1, "market", 1, 8, {"market/loss": 0.5}, 0.8))
    assert list(model.losses.steps)[-2:] == [7, 8]


def test_eta_follows_the_recent_speed():
    model = RunModel()
    model.apply(marketeq.RunStarted("tiny", "rlink", 1, 100, N, ("a", "b", "c")))
    model.apply(marketeq.PhaseStarted(0, "agents", 100))
    assert math.isnan(model.eta_s)
    for step in range(1, 11):
        model.apply(marketeq.IterationEnded(0, "agents", step - 1, step, {"agents/loss": 1.0}, 0.5 * step))
    assert math.isclose(model.eta_s, 0.5 * 90)
    assert "ETA 0:45" in model.progress_text()
    assert format_seconds(3725) == "1:02:05" and format_seconds(math.nan) == "--:--"


def test_reset_keeps_versions_moving():
    model = RunModel()
    feed(model)
    seen = (model.version, model.curves_version, model.losses_version)
    model.reset("other")
    assert all(new > old for new, old in
               zip((model.version, model.curves_version, model.losses_version), seen, strict=True))
    assert model.curves is None and model.losses.n == 0


def test_importing_gui_the_run_model_and_the_solver_process_loads_no_qt():
    """The solver process imports gui.solver_process: Qt must stay out of it."""
    code = ("import sys, gui, gui.run_model, gui.solver_process; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'pyqtgraph'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_oracle_sent_before_training_survives_the_run_start():
    """The solver process sends the oracle, then RunStarted: the overlay must be there from the start."""
    model = RunModel()
    model.reset("tiny", ("a", "b", "c"))
    t = np.linspace(0, 0.2, K + 1)
    oracle = type("P", (), {"t": t, "sigma": np.ones((2, K + 1)), "mu": np.ones((2, K + 1)),
                            "S": np.ones((2, K + 1)), "phi": np.ones((2, K + 1, N)),
                            "phidot": np.zeros((2, K + 1, N))})()
    model.set_oracle("riccati", oracle)
    model.apply(marketeq.RunStarted("tiny", "rlink", 1, 10, N, ("a", "b", "c")))
    assert model.oracle is not None and model.oracle_name == "riccati"
    np.testing.assert_array_equal(model.oracle.sigma, np.ones(K + 1))


def test_eta_leaves_out_paused_time():
    """50 s of pause on the solver's clock must not slow the measured speed (0.5 s per iteration)."""
    model = RunModel()
    model.apply(marketeq.RunStarted("tiny", "rlink", 1, 100, N, ("a", "b", "c")))
    for step in range(1, 11):
        model.apply(marketeq.IterationEnded(0, "agents", step - 1, step, {}, 0.5 * step))
    model.set_paused(True, now=1000.0)
    assert model.status == "paused" and math.isclose(model.eta_s, 0.5 * 90)
    model.set_paused(False, now=1050.0)
    for step in range(11, 13):  # the solver's elapsed time includes the 50 s it waited
        model.apply(marketeq.IterationEnded(0, "agents", step - 1, step, {}, 50 + 0.5 * step))
    assert model.status == "running" and math.isclose(model.eta_s, 0.5 * 88)


def test_a_status_the_app_does_not_know_is_shown_as_it_comes():
    model = RunModel()
    feed(model)
    model.apply(marketeq.RunEnded("converged", 12, "clearing 1e-4 < 2e-4"))  # a value newer than the app
    assert model.status == "evaluating" and model.ended_status == "converged"
    assert model.progress_text().startswith("evaluating (converged)")


def test_a_finished_adaptive_run_shows_the_rounds_and_steps_it_took(quickstart):
    """The default schedule stops on its own: the progress line counts what the run did, not a plan."""
    from gui.estimate import estimate_text

    scenario = quickstart.replace(**{"market.steps": 20, "run.test_paths": 200, "run.device": "cpu"})
    result = marketeq.solve(scenario)
    model = RunModel()
    model.load_result(result)
    rounds = int(result.metrics["convergence/rounds"].value)
    assert model.rounds == rounds and model.total_iterations == model.step == int(result.history["step"][-1])
    assert f"round {rounds}/{rounds}" in model.progress_text()
    assert estimate_text(scenario).startswith("adaptive schedule")
    assert "iterations" in estimate_text(scenario.replace(**{"solver.rounds": 2}))
