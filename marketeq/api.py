"""``solve``: the one path from a scenario to a result, shared by the CLI, the GUI, sweeps and scripts."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from marketeq.memory import check_memory
from marketeq.metrics import compute_metrics
from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths
from marketeq.oracles import reference_for
from marketeq.oracles.base import Oracle
from marketeq.results import Metric, RunResult
from marketeq.runtime import Runtime, provenance, seed_everything
from marketeq.scenario import Scenario, scenario_to_toml
from marketeq.solvers.base import ResumeError
from marketeq.solvers.checkpoints import checkpoint_sink, read_resume, resume_failed
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
          device: str | None = None, seed: int | None = None,
          checkpoint: str | os.PathLike[str] | None = None,
          resume: str | os.PathLike[str] | None = None) -> RunResult:
    """Train the scenario's solver, evaluate it on the seeded test set and compare it with its oracle.

    Args:
        checkpoint: a file to keep the run's state in, replaced atomically at the start of every phase,
            every ``solver.checkpoint_every`` iterations and when a stop is requested; None keeps none.
        resume: a checkpoint file to continue from: the run ends as the one that wrote it would have
            (bitwise on CPU). Checkpoints then go on to ``checkpoint``, by default the same file.

    Raises:
        ScenarioError: the run would not fit in the available memory (names the sizes to reduce).
        ResultFileError: the checkpoint to resume cannot be read or belongs to another scenario or seed,
            or a checkpoint cannot be written.
    """
    scenario, runtime = _runtime(scenario, device, seed)
    check_memory(scenario, runtime.device)
    saved = None if resume is None else read_resume(resume, scenario)
    seed_everything(runtime.seed)
    started = time.perf_counter()
    solver = SOLVERS[scenario.solver.method](scenario, runtime)
    model = solver.model
    oracle = reference_for(model)
    if oracle is not None:  # snapshots report their distance to it
        solver.oracle_sigma = oracle.sigma_curve(model.times.cpu().double().numpy())
    run_provenance: dict[str, Any] = provenance(runtime)
    if saved is not None:
        run_provenance["resumed_from_step"] = saved.step
    target = checkpoint if checkpoint is not None else resume
    sink = None if target is None else checkpoint_sink(target, scenario, solver.name, run_provenance)
    try:
        outcome = solver.run(CallbackList(callbacks), control, resume=None if saved is None else saved.state,
                             checkpoint=sink)
    except ResumeError as exc:
        raise resume_failed(resume, exc) from None
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt, runtime.device,
                             runtime.dtype)
    paths = solver.evaluate(test).numpy()
    reference = _oracle(oracle, test)
    status, message = outcome.status, outcome.message
    metrics: dict[str, Metric] = {}
    if status != "diverged":
        metrics = compute_metrics(model, paths, reference[1] if reference else None,
                                  reference[2] if reference else None)
        bad = [name for name, metric in metrics.items() if not math.isfinite(metric.value)]
        if bad:  # finite training losses, yet the test set overflows: not a result to trust
            status, message, metrics = "diverged", f"{bad[0]} is not finite on the test set", {}
    return RunResult(
        scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=solver.name,
        status=status, message=message, provenance=run_provenance,
        history=solver.history.columns(), paths=paths, metrics=metrics,
        oracle_name=reference[0] if reference else None, oracle_paths=reference[1] if reference else None,
        oracle_metrics=oracle_metrics(scenario, reference[1]) if reference else {},
        weights=solver.weights(), wall_time_s=time.perf_counter() - started + solver.resumed_elapsed_s,
    )


def _oracle(oracle: Oracle | None, test) -> tuple[str, Paths, float] | None:  # noqa: ANN001
    if oracle is None:
        return None
    return oracle.name, oracle.paths(test).numpy(), oracle.s0


def oracle_paths(scenario: Scenario) -> tuple[str, Paths] | None:
    """The scenario's oracle on its seeded test set (numpy), or None when it has no oracle."""
    scenario, runtime = _runtime(scenario, "cpu", None)
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt)
    reference = _oracle(reference_for(model), test)
    return None if reference is None else reference[:2]


def oracle_result(scenario: Scenario) -> RunResult | None:
    """The oracle as a result of its own (metrics on the test set), for `marketeq oracle` and comparisons."""
    scenario, runtime = _runtime(scenario, "cpu", None)
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt)
    started = time.perf_counter()
    reference = _oracle(reference_for(model), test)
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


def oracle_metrics(scenario: Scenario, paths: Paths) -> dict[str, Metric]:
    """The oracle's own metrics on its ``paths`` (float64, CPU), with its exact continuous-time S0."""
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    metrics = compute_metrics(model, paths)
    reference = reference_for(model)
    if reference is not None:
        metrics["S0"] = Metric(reference.s0)
    return metrics


def with_oracle_metrics(result: RunResult) -> RunResult:
    """``result`` with its oracle's metrics, computed here when its file predates storing them."""
    if result.oracle_paths is None or result.oracle_metrics:
        return result
    return replace(result, oracle_metrics=oracle_metrics(result.scenario, result.oracle_paths))
