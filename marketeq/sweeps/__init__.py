"""Scenario sweeps: grids of scenarios run as independent trials, one HDF5 file each, and a summary table.

    sweep = load_sweep("scenarios/sweeps/lambda_quadratic.toml")
    outcome = run_sweep(sweep, "results/lambda", backend="local", workers=2)
    predictions_figure("results/lambda", "predictions.png")
"""

from marketeq.sweeps.runner import SweepOutcome, run_sweep
from marketeq.sweeps.spec import DERIVED, Sweep, SweepError, Trial, apply_parameter, load_sweep
from marketeq.sweeps.summary import read_summary
from marketeq.sweeps.trial import run_trial

__all__ = ["DERIVED", "Sweep", "SweepError", "SweepOutcome", "Trial", "apply_parameter", "load_sweep",
           "predictions_figure", "read_summary", "run_sweep", "run_trial"]


def predictions_figure(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """See :func:`marketeq.sweeps.figure.predictions_figure` (imported lazily: it loads matplotlib)."""
    from marketeq.sweeps.figure import predictions_figure as draw

    return draw(*args, **kwargs)
