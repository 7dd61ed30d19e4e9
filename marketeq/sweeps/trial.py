"""One trial: run a method on one scenario, write its own HDF5 file, return its row of scalar metrics.

A trial that raises still writes a file: a result with status ``failed`` and the error as its message, so
the sweep goes on and the summary says what went wrong. A trial whose file holds a finished result is
not run again.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import marketeq
from marketeq import MarketModel, Metric, ResultFileError, RunResult, read_result, write_result
from marketeq.methods import ORACLE, SOLVERS
from marketeq.sweeps.spec import Trial

TRIALS_DIR = "trials"
FINISHED = ("completed", "diverged")  # re-running these would give the same answer for the same seed
# One thread per trial (torch and BLAS): parallelism comes from running trials side by side, and a fixed
# thread count keeps the numbers bit-identical across backends (OpenBLAS sums differently on 2 threads).
TRIAL_THREADS = 1
MESSAGE_LIMIT = 400


def _solver(scenario: marketeq.Scenario) -> RunResult:
    return marketeq.solve(scenario)


def _oracle(scenario: marketeq.Scenario) -> RunResult:
    result = marketeq.oracle_result(scenario)
    if result is None:
        raise ValueError(f"no exact oracle for q = {scenario.frictions.q:g} with lambda > 0")
    return result


# A trial's method (marketeq.methods) -> how it runs; a solver trial's scenario already names its method.
METHODS: dict[str, Callable[[marketeq.Scenario], RunResult]] = {ORACLE: _oracle,
                                                               **dict.fromkeys(SOLVERS, _solver)}


def trial_path(directory: str | os.PathLike[str], trial: Trial) -> Path:
    return Path(directory) / TRIALS_DIR / trial.filename


def run_trial(trial: Trial, directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Run ``trial``, write ``DIR/trials/<method>-<hash>.h5`` and return its summary row; never raises
    for an error of the trial itself (it is recorded in the file and the row instead)."""
    path = trial_path(directory, trial)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with trial_threads():
            result = METHODS[trial.method](trial.scenario())
    except Exception as exc:  # recorded, so that one bad trial does not stop the sweep
        result = failed_result(trial, exc, time.perf_counter() - started)
    write_result(result, path)
    return summary_row(trial, result)


@contextlib.contextmanager
def trial_threads(count: int = TRIAL_THREADS) -> Iterator[None]:
    """Torch and BLAS limited to ``count`` threads inside the block, as every trial runs."""
    from marketeq.runtime import torch_threads

    with torch_threads(count):
        yield


def failed_result(trial: Trial, error: BaseException, wall_time_s: float = math.nan) -> RunResult:
    """A small result holding only the scenario and the error: status ``failed``, no paths, no metrics."""
    last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    message = " ".join(f"{type(error).__name__}: {error}".split())
    message = (message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 3] + "...") + where
    return RunResult(
        scenario=trial.scenario(), scenario_toml=trial.scenario_toml, solver=trial.method, status="failed",
        provenance={"seed": trial.seed, "marketeq": marketeq.__version__}, history={"step": np.zeros(0, int)},
        paths=None, metrics={}, message=message, wall_time_s=wall_time_s,
    )


def record_failure(trial: Trial, directory: str | os.PathLike[str], error: BaseException) -> dict[str, Any]:
    """Write the failed record of a trial whose worker could not report (it crashed or was lost)."""
    path = trial_path(directory, trial)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = failed_result(trial, error)
    write_result(result, path)
    return summary_row(trial, result)


def finished_row(trial: Trial, directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The row of a trial whose file already holds a finished result, or None when it must (re)run."""
    path = trial_path(directory, trial)
    if not path.is_file():
        return None
    try:
        result = read_result(path)
    except ResultFileError:
        return None
    # The file name carries the trial's content hash, so a finished file is this trial's.
    return summary_row(trial, result) if result.status in FINISHED else None



# --- the row -------------------------------------------------------------------------------------------

def summary_row(trial: Trial, result: RunResult) -> dict[str, Any]:
    """Trial identity, parameters, status and every scalar metric (``name`` and ``name_se``), plus the
    predictions: liquidity premium ``mu0 - mu_bar`` and price discount ``S0 - S0_frictionless``."""
    row: dict[str, Any] = {
        "trial": trial.index, "group": trial.group, "method": trial.method, "seed": trial.seed,
        "status": result.status, "message": result.message, "solver": result.solver,
        "wall_time_s": float(result.wall_time_s), "file": f"{TRIALS_DIR}/{trial.filename}",
    }
    row.update({f"param/{name}": value for name, value in trial.params})
    model = MarketModel.from_scenario(result.scenario)
    row["mu_bar"], row["S0_frictionless"] = model.frictionless_mu, model.frictionless_s0
    metrics = dict(result.metrics)
    for name, reference, derived in (("mu0", model.frictionless_mu, "liquidity_premium"),
                                     ("S0", model.frictionless_s0, "price_discount")):
        if name in metrics:
            value, stderr = metrics[name]
            metrics[derived] = Metric(value - reference, stderr)  # the reference is exact: same stderr
    for name, (value, stderr) in metrics.items():
        row[name], row[f"{name}_se"] = float(value), float(stderr)
    return row
