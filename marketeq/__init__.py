"""marketeq: continuous-time equilibria of financial markets with trading costs.

The public API is what this module exports; everything else is internal::

    import marketeq
    scenario = marketeq.load_scenario("scenarios/quickstart.toml")
    result = marketeq.solve(scenario)
    marketeq.write_result(result, "quickstart.h5")

Names load on first use (PEP 562): ``import marketeq`` costs nothing, and torch is imported only when
something that computes is asked for, so the command line and file tools stay instant.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["Scenario", "ScenarioError", "scenario_to_toml"], "marketeq.scenario"),
    "load_scenario": "marketeq.scenario_files",
    **dict.fromkeys(["Metric", "Paths", "RunResult", "GapReport", "mean_se", "metric_rows", "format_metric"],
                    "marketeq.results"),
    **dict.fromkeys(["ResultFileError", "read_comparison", "read_gap", "read_result", "write_comparison",
                     "write_result"], "marketeq.hdf5"),
    **dict.fromkeys(["SOLVERS", "approximation_paths", "oracle_paths", "oracle_result", "solve",
                     "with_oracle_metrics"],
                    "marketeq.api"),
    **dict.fromkeys(["METHODS", "compare"], "marketeq.compare"),
    "result_gap": "marketeq.gap",
    **dict.fromkeys(["Brownian", "brownian_test_set"], "marketeq.model.brownian"),
    "MarketModel": "marketeq.model.market",
    **dict.fromkeys(["ORACLES", "oracle_for", "reference_for", "reference_name"], "marketeq.oracles"),
    **dict.fromkeys(["Callback", "CheckpointSaved", "IterationEnded", "PhaseEnded", "PhaseStarted",
                     "RolledBack", "RunControl", "RunEnded", "RunStarted", "Snapshot"],
                    "marketeq.solvers.events"),
}
_SUBMODULES = {"callbacks"}  # modules exported as such: marketeq.callbacks

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"marketeq.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'marketeq' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])
