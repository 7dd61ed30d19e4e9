"""``solve``: the one path from a scenario to a result, shared by the CLI, the GUI, sweeps and scripts."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from marketeq.memory import check_memory
from marketeq.metrics import compute_metrics
from marketeq.metrics_assets import assets_metrics, assets_oracle_errors
from marketeq.model.brownian import Brownian, brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths
from marketeq.oracles import ORACLES, PdeOracle, oracle_names, reference_for, reference_name
from marketeq.oracles.assets_oracle import assets_oracle, assets_paths
from marketeq.oracles.base import Oracle
from marketeq.oracles.pde_grid import PdeGrid
from marketeq.results import Metric, RunResult
from marketeq.runtime import Runtime, provenance, seed_everything
from marketeq.scenario import Scenario, ScenarioError, scenario_to_toml
from marketeq.scenario.assets import asset_arrays, refuse_unsolved_assets
from marketeq.solvers.adaptive import AdaptiveLinkSolver
from marketeq.solvers.assets_solver import AssetsQuadraticSolver
from marketeq.solvers.base import ResumeError, Solver
from marketeq.solvers.checkpoints import checkpoint_sink, read_resume, resume_failed
from marketeq.solvers.events import Callback, CallbackList, RunControl, Status
from marketeq.solvers.fbsde import FBSDESolver
from marketeq.solvers.joint import JointSolver
from marketeq.solvers.rlink import ReinforcementLinkSolver

SOLVERS = {"rlink": ReinforcementLinkSolver, "joint": JointSolver, "fbsde": FBSDESolver}


def runnable(scenario: Scenario) -> None:
    """Refuse, in one line naming the field, a scenario that :func:`solve` cannot run: several assets with
    power costs, without costs, or with another method than the default schedule."""
    refuse_unsolved_assets(scenario)


def one_asset_method(scenario: Scenario) -> None:
    """Refuse, in one line naming the method, a several-asset scenario where one asset is needed (comparisons
    of solvers, the trained solvers)."""
    if scenario.n_assets > 1:
        exact = reference_name(scenario)
        hint = (f"'marketeq run' with the default settings solves it and 'marketeq oracle' gives its exact "
                f"answer ({exact})" if exact else "no solver or exact answer exists for it (q < 2)")
        raise ScenarioError("solver.method", scenario.solver.method,
                            f"solves one asset here, but market.assets = {scenario.n_assets}; {hint}")


def build_solver(scenario: Scenario, runtime: Runtime) -> Solver:
    """The scenario's solver: its method, and for rlink its schedule."""
    one_asset_method(scenario)
    if scenario.solver.method == "rlink" and scenario.solver.adaptive:
        return AdaptiveLinkSolver(scenario, runtime)
    return SOLVERS[scenario.solver.method](scenario, runtime)


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
          resume: str | os.PathLike[str] | None = None,
          partial: Callable[[RunResult], None] | None = None) -> RunResult:
    """Train the scenario's solver, evaluate it on the seeded test set and compare it with its oracle.

    Args:
        checkpoint: a file to keep the run's state in, replaced atomically at the start of every phase,
            every ``solver.checkpoint_every`` iterations and when a stop is requested; None keeps none.
        resume: a checkpoint file to continue from: the run ends as the one that wrote it would have
            (bitwise on CPU). Checkpoints then go on to ``checkpoint``, by default the same file.
        partial: called with a stopped run's result before its test-set evaluation (history and weights;
            no paths or metrics), so that a front-end can put it on disk at once: with a thousand agents
            the evaluation takes most of a minute.

    Raises:
        ScenarioError: the run would not fit in the available memory (names the sizes to reduce).
        ResultFileError: the checkpoint to resume cannot be read or belongs to another scenario or seed,
            or a checkpoint cannot be written.
    """
    if scenario.n_assets > 1:  # exact grid equilibria, nothing to train or checkpoint
        return _solve_assets(scenario, callbacks, control, seed)
    one_asset_method(scenario)
    scenario, runtime = _runtime(scenario, device, seed)
    check_memory(scenario, runtime.device)
    saved = None if resume is None else read_resume(resume, scenario)
    seed_everything(runtime.seed)
    started = time.perf_counter()
    solver = build_solver(scenario, runtime)
    model = solver.model
    oracle = make_oracle(model)
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
    def result(**fields: Any) -> RunResult:
        return RunResult(
            scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=solver.name,
            provenance=run_provenance, history=solver.history.columns(), weights=solver.weights(),
            wall_time_s=time.perf_counter() - started + solver.resumed_elapsed_s, **fields)

    if outcome.status == "interrupted" and partial is not None:
        partial(result(status="interrupted", message=f"{outcome.message}; not evaluated on the test set",
                       paths=None, metrics={}))
    test = _test_set(scenario, runtime, model)
    paths = solver.evaluate(test).numpy()
    # A stopped run goes to disk first: the oracle's roll-out of every agent comes after, in with_oracle, so
    # that an interrupt is answered within seconds at any number of agents.
    reference = None if outcome.status == "interrupted" else _oracle(oracle, test)
    status, message, metrics = _assess(model, paths, reference, outcome.status, outcome.message)
    if metrics:
        metrics.update({name: Metric(value) for name, value in solver.convergence().items()})
    return result(status=status, message=message, paths=paths, metrics=metrics,
                  oracle_name=reference[0] if reference else None,
                  oracle_paths=reference[1] if reference else None,
                  oracle_metrics=oracle_metrics(scenario, reference[1]) if reference else {})


def _solve_assets(scenario: Scenario, callbacks: Iterable[Callback], control: RunControl | None,
                  seed: int | None) -> RunResult:
    """:func:`solve` for several assets (quadratic costs): the refined grid equilibria on the seeded test set
    of d factors, with the per-asset metrics and the matrix-Riccati oracle's errors on the same paths."""
    scenario, runtime = _runtime(scenario, "cpu", seed)
    started = time.perf_counter()
    solver = AssetsQuadraticSolver(scenario)
    status, message = solver.run(CallbackList(callbacks), control)
    m, arrays = scenario.market, asset_arrays(scenario)
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, m.steps, m.dt, assets=scenario.n_assets)
    paths = Paths(**solver.evaluate(test.dW.numpy()))
    metrics = assets_metrics(arrays, paths)
    metrics.update({name: Metric(value) for name, value in solver.convergence().items()})
    reference = _assets_reference(scenario, "auto", runtime.seed)
    oracle_fields: dict[str, Any] = {}
    if reference is not None:
        name, oracle, s0 = reference
        metrics.update(assets_oracle_errors(paths, oracle))
        metrics["oracle/S0_rel_error"] = Metric(float(np.abs(paths.S[:, 0].mean(0) - s0).max()
                                                      / np.abs(s0).max()))
        own = assets_metrics(arrays, oracle)
        own.update({f"S0/{i + 1}": Metric(float(v)) for i, v in enumerate(s0)})
        oracle_fields = dict(oracle_name=name, oracle_paths=oracle, oracle_metrics=own)
    return RunResult(scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=solver.name,
                     status=status, provenance=provenance(Runtime(torch.device("cpu"), torch.float64,
                                                                  runtime.seed)),
                     history={"step": np.zeros(0, dtype=np.int64)}, paths=paths, metrics=metrics,
                     message=message, wall_time_s=time.perf_counter() - started, **oracle_fields)


def with_oracle(result: RunResult) -> RunResult:
    """``result`` with its oracle's paths and the errors against them, computed on its own test set (what
    :func:`solve` leaves out of an interrupted run); unchanged when the scenario has no oracle or the run
    already carries it."""
    if (result.oracle_paths is not None or result.paths is None or result.scenario.n_assets > 1
            or reference_name(result.scenario) is None):
        return result
    scenario, runtime = _runtime(result.scenario, None, None)
    model = MarketModel.from_scenario(scenario, runtime.device, runtime.dtype)
    reference = _oracle(make_oracle(model), _test_set(scenario, runtime, model))
    status, message, metrics = _assess(model, result.paths, reference, result.status, result.message)
    if metrics:  # the solver's verdict is not the oracle's to recompute
        metrics.update({k: v for k, v in result.metrics.items() if k.startswith("convergence/")})
    return replace(result, status=status, message=message, metrics=metrics, oracle_name=reference[0],
                   oracle_paths=reference[1], oracle_metrics=oracle_metrics(scenario, reference[1]))


def _test_set(scenario: Scenario, runtime: Runtime, model: MarketModel) -> Brownian:
    return brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt, runtime.device,
                             runtime.dtype)


def _assess(model: MarketModel, paths: Paths, reference: tuple[str, Paths, float] | None, status: Status,
            message: str) -> tuple[Status, str, dict[str, Metric]]:
    """Status, message and metrics of a run's test-set paths, against the oracle when there is one."""
    if status == "diverged":
        return status, message, {}
    metrics = compute_metrics(model, paths, reference[1] if reference else None,
                              reference[2] if reference else None)
    bad = [name for name, metric in metrics.items() if not math.isfinite(metric.value)]
    if bad:  # finite training losses, yet the test set overflows: not a result to trust
        return "diverged", f"{bad[0]} is not finite on the test set", {}
    return status, message, metrics


def make_oracle(model: MarketModel, method: str = "auto", grid: PdeGrid | None = None) -> Oracle | None:
    """The oracle ``method`` names ("auto": the scenario's reference, None when it has none); ``grid`` is the
    PDE's. ScenarioError (one line) when the named oracle does not cover the market."""
    if method != "auto" and method not in ORACLES:
        raise ScenarioError("--method", method, f"choose from auto, {', '.join(ORACLES)}")
    try:
        if method == "auto":
            oracle = reference_for(model, grid)
        else:
            oracle = ORACLES[method](model, grid) if method == "pde" else ORACLES[method](model)
    except ValueError as exc:
        raise ScenarioError("--method", method, str(exc)) from None
    if grid is not None and not isinstance(oracle, PdeOracle):
        raise ScenarioError("--grid", f"{grid.n_phi} {grid.n_w}",
                            "only the PDE reference (two agents, q < 2) has a grid")
    return oracle


def _oracle(oracle: Oracle | None, test) -> tuple[str, Paths, float, Oracle] | None:  # noqa: ANN001
    if oracle is None:
        return None
    return oracle.name, oracle.paths(test).numpy(), oracle.s0, oracle


def oracle_paths(scenario: Scenario, method: str = "auto") -> tuple[str, Paths] | None:
    """The scenario's oracle (``method``, as for :func:`make_oracle`) on its seeded test set (numpy), or None
    when it has no oracle."""
    scenario, runtime = _runtime(scenario, "cpu", None)
    if scenario.n_assets > 1:
        found = _assets_reference(scenario, method, runtime.seed)
        return None if found is None else found[:2]
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt)
    reference = _oracle(make_oracle(model, method), test)
    return None if reference is None else reference[:2]


def approximation_paths(scenario: Scenario) -> tuple[str, Paths] | None:
    """The leading-order approximation on the test set, when it applies and is not already the reference
    (two agents with power costs, where the PDE is): drawn beside the reference. None otherwise."""
    names = oracle_names(scenario)
    if scenario.n_assets > 1 or "leading-order" not in names[1:]:
        return None
    return oracle_paths(scenario, "leading-order")


def oracle_result(scenario: Scenario, method: str = "auto", grid: PdeGrid | None = None) -> RunResult | None:
    """An oracle as a result of its own (metrics on the test set), for `marketeq oracle` and comparisons:
    ``method`` names it ("auto": the scenario's reference); the message says what it is (the PDE: its grid
    and estimated error). None when ``method`` is "auto" and the scenario has no reference."""
    scenario, runtime = _runtime(scenario, "cpu", None)
    if scenario.n_assets > 1:
        return _assets_oracle_result(scenario, method, grid, runtime.seed)
    model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
    test = brownian_test_set(runtime.seed, scenario.run.test_paths, model.n_steps, model.dt)
    started = time.perf_counter()
    reference = _oracle(make_oracle(model, method, grid), test)
    if reference is None:
        return None
    name, paths, s0, oracle = reference
    label = getattr(oracle, "label", "")  # the PDE's grid and error estimate (a coarser solve)
    metrics = compute_metrics(model, paths)
    metrics["S0"] = Metric(s0)  # the exact continuous-time value, not the path mean of a constant
    return RunResult(scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=f"oracle:{name}",
                     status="completed", provenance=provenance(Runtime(torch.device("cpu"), torch.float64,
                                                                        runtime.seed)),
                     history={"step": np.zeros(0, dtype=np.int64)}, paths=paths, metrics=metrics,
                     oracle_name=name, message=label, wall_time_s=time.perf_counter() - started)


def _assets_reference(scenario: Scenario, method: str, seed: int) -> tuple[str, Paths, np.ndarray] | None:
    """A several-asset oracle on the scenario's seeded test set (d factors): name, paths, exact S_0 (d,)."""
    found = assets_oracle(scenario, method)
    if found is None:
        return None
    name, oracle = found
    m = scenario.market
    test = brownian_test_set(seed, scenario.run.test_paths, m.steps, m.dt, assets=scenario.n_assets)
    return name, assets_paths(oracle, test.dW.numpy()), np.asarray(oracle.s0, dtype=float)


def _assets_oracle_result(scenario: Scenario, method: str, grid: PdeGrid | None, seed: int) -> RunResult | None:
    """:func:`oracle_result` for several assets: the matrix-Riccati or frictionless oracle with its metrics
    (per asset), the exact continuous-time S_0 of each asset in place of the path mean."""
    if grid is not None:
        raise ScenarioError("--grid", f"{grid.n_phi} {grid.n_w}", "only the one-asset PDE reference has a grid")
    started = time.perf_counter()
    reference = _assets_reference(scenario, method, seed)
    if reference is None:
        return None
    name, paths, s0 = reference
    metrics = assets_metrics(asset_arrays(scenario), paths)
    metrics.update({f"S0/{i + 1}": Metric(float(v)) for i, v in enumerate(s0)})
    return RunResult(scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=f"oracle:{name}",
                     status="completed", provenance=provenance(Runtime(torch.device("cpu"), torch.float64, seed)),
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
