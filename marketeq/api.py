"""``solve``: the one path from a scenario to a result, shared by the CLI, the GUI, sweeps and scripts."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch

from marketeq.callbacks import HistoryRecorder
from marketeq.metrics import compute_metrics
from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths
from marketeq.oracles import reference_for
from marketeq.results import Metric, RunResult
from marketeq.runtime import Runtime, provenance, seed_everything
from marketeq.scenario import Scenario, scenario_to_toml
from marketeq.solvers.combo import ComboSolver
from marketeq.solvers.events import Callback, CallbackList, RunControl
from marketeq.solvers.fbsde import FBSDESolver
from marketeq.solvers.rlink import ReinforcementLinkSolver

SOLVERS = {"rlink": ReinforcementLinkSolver, "combo": ComboSolver, "fbsde": FBSDESolver}


def _runtime(scenario: Scenario, device: str | None, seed: int | None) -> tuple[Scenario, Runtime]:
    changes = {}
    if device is not None:
        changes["run.device"] = device
    if seed is not None:
        changes["run.seed"] = seed
    scenario = scenario.replace(**changes) if changes else scenario
    run = scenario.run
    return scenario, Runtime.from_settings(run.device, run.dtype, run.seed)


def solve(scenario: Scenario, callbacks: Iterable[Callback] = (), control: RunControl | None = None, *,
          device: str | None = None, seed: int | None = None) -> RunResult:
    """Train the scenario's solver, evaluate it on the seeded test set and compare it with its oracle."""
    scenario, runtime = _runtime(scenario, device, seed)
    seed_everything(runtime.seed)
    started = time.perf_counter()
    solver = SOLVERS[scenario.solver.method](scenario, runtime)
    recorder = HistoryRecorder()
    outcome = solver.run(CallbackList([recorder, *callbacks]), control)
    model = solver.model
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt, runtime.device,
                             runtime.dtype)
    paths = solver.evaluate(test).numpy()
    reference = _oracle(model, test)
    metrics: dict[str, Metric] = {}
    if outcome.status != "diverged":
        metrics = compute_metrics(model, paths, reference[1] if reference else None,
                                  reference[2] if reference else None)
    return RunResult(
        scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=solver.name,
        status=outcome.status, message=outcome.message, provenance=provenance(runtime),
        history=recorder.columns(), paths=paths, metrics=metrics,
        oracle_name=reference[0] if reference else None, oracle_paths=reference[1] if reference else None,
        weights=solver.weights(), wall_time_s=time.perf_counter() - started,
    )


def _oracle(model: MarketModel, test) -> tuple[str, Paths, float] | None:  # noqa: ANN001
    oracle = reference_for(model)
    if oracle is None:
        return None
    return oracle.name, oracle.paths(test).numpy(), oracle.s0


def oracle_paths(scenario: Scenario) -> tuple[str, Paths] | None:
    """The scenario's oracle on its seeded test set (numpy), or None when it has no oracle."""
    scenario, runtime = _runtime(scenario, "cpu", None)
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt)
    reference = _oracle(model, test)
    return None if reference is None else reference[:2]


def oracle_result(scenario: Scenario) -> RunResult | None:
    """The oracle as a result of its own (metrics on the test set), for `marketeq oracle` and comparisons."""
    scenario, runtime = _runtime(scenario, "cpu", None)
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt)
    started = time.perf_counter()
    reference = _oracle(model, test)
    if reference is None:
        return None
    name, paths, s0 = reference
    metrics = compute_metrics(model, paths)
    metrics["S0"] = Metric(s0)  # the exact continuous-time value, not the path mean of a constant
    return RunResult(scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=f"oracle:{name}",
                     status="completed", provenance=provenance(Runtime(torch.device("cpu"), torch.float64,
                                                                        runtime.seed)),
                     history={"step": np.zeros(0, dtype=np.int64)}, paths=paths, metrics=metrics,
                     oracle_name=name, wall_time_s=time.perf_counter() - started)


def format_metric(metric: Metric | None) -> str:
    if metric is None:
        return ""
    value, se = metric
    return f"{value:.6g}" if not np.isfinite(se) else f"{value:.6g} ± {se:.2g}"


def metric_rows(result: RunResult) -> list[tuple[str, str, str]]:
    """(metric, solver value ± stderr, oracle value) rows of the final metrics table."""
    oracle: dict[str, Metric] = {}
    if result.oracle_paths is not None:
        model = MarketModel.from_scenario(result.scenario, "cpu", torch.float64)
        oracle = compute_metrics(model, result.oracle_paths)
        reference = reference_for(model)
        if reference is not None:
            oracle["S0"] = Metric(reference.s0)
    return [(name, format_metric(metric), format_metric(oracle.get(name)))
            for name, metric in result.metrics.items()]
