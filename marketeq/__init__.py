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
from marketeq.hdf5 import (  # noqa: E402
    ResultFileError,
    read_comparison,
    read_gap,
    read_result,
    write_comparison,
    write_result,
)
from marketeq import callbacks  # noqa: E402
from marketeq.compare import METHODS, compare  # noqa: E402
from marketeq.gap import GapReport, result_gap  # noqa: E402
from marketeq.model.brownian import Brownian, brownian_test_set  # noqa: E402
from marketeq.model.market import MarketModel  # noqa: E402
from marketeq.model.rollout import Paths  # noqa: E402
from marketeq.oracles import ORACLES, oracle_for, reference_for, reference_name  # noqa: E402
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
    "METHODS", "ORACLES", "SOLVERS", "Brownian", "Callback", "CheckpointSaved", "GapReport", "IterationEnded",
    "MarketModel", "Metric", "Paths", "PhaseEnded", "PhaseStarted", "ResultFileError", "RolledBack",
    "RunControl", "RunEnded", "RunResult", "RunStarted", "Scenario", "ScenarioError", "Snapshot",
    "__version__",
    "brownian_test_set", "callbacks", "compare", "load_scenario", "metric_rows", "oracle_for", "oracle_paths",
    "oracle_result", "read_comparison", "read_gap", "read_result", "reference_for", "reference_name",
    "result_gap", "scenario_to_toml", "solve", "write_comparison", "write_result",
]
