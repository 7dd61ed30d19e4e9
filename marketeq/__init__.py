"""marketeq: continuous-time equilibria of financial markets with trading costs.

The public API is what this module exports; everything else is internal::

    import marketeq
    scenario = marketeq.load_scenario("scenarios/quickstart.toml")
    result = marketeq.solve(scenario)
    marketeq.write_result(result, "quickstart.h5")
"""

__version__ = "0.1.0"

# The order matters little, but api pulls in torch: keep scenario first so `validate` stays light.
from marketeq.scenario import Scenario, ScenarioError, load_scenario, scenario_to_toml  # noqa: E402, I001
from marketeq.api import SOLVERS, metric_rows, oracle_paths, oracle_result, solve  # noqa: E402
try:  # TEMPORARY-HDF5-GUARD
    from marketeq.hdf5 import ResultFileError, read_result, write_result  # noqa: E402
except ImportError:
    pass
from marketeq import callbacks  # noqa: E402
from marketeq.model.brownian import Brownian, brownian_test_set  # noqa: E402
from marketeq.model.market import MarketModel  # noqa: E402
from marketeq.model.rollout import Paths  # noqa: E402
from marketeq.oracles import ORACLES, oracle_for  # noqa: E402
from marketeq.results import Metric, RunResult  # noqa: E402
from marketeq.solvers.events import (  # noqa: E402
    Callback,
    CheckpointSaved,
    IterationEnded,
    PhaseEnded,
    PhaseStarted,
    RolledBack,
    RunControl,
    RunEnded,
    RunStarted,
    Snapshot,
)

__all__ = [
    "ORACLES", "SOLVERS", "Brownian", "Callback", "IterationEnded", "MarketModel", "Metric", "Paths",
    "PhaseEnded", "PhaseStarted", "ResultFileError", "RunControl", "RunEnded", "RunResult", "RunStarted",
    "CheckpointSaved", "RolledBack",
    "Scenario", "ScenarioError", "Snapshot", "__version__", "brownian_test_set", "load_scenario",
    "metric_rows", "oracle_for", "oracle_paths", "oracle_result", "read_result", "scenario_to_toml", "solve",
    "write_result",
]
