"""What the command families share: the one-line error, loading the scenario, the console and the metrics
table. Everything heavy (rich, the engine) is imported inside the functions that need it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loading a scenario pulls in pydantic: not for --help
    from marketeq.scenario import Scenario

DEFAULT_SCENARIO = "scenarios/quickstart.toml"
DEFAULT_GAP_ITERATIONS = 200  # marketeq.gap.DEFAULT_ITERATIONS (not imported: it pulls in torch)
EXIT_USAGE = 2


class CliError(Exception):
    """An error that the CLI reports as one line."""


@contextmanager
def optional_dependency(what: str, packages: str, extra: str) -> Iterator[None]:
    """Imports in the block that fail name the missing package and the extra that installs it."""
    try:
        yield
    except ImportError as exc:
        raise CliError(f"{what} needs {packages} ({exc.name} missing): "
                       f"pip install 'marketeq[{extra}]'") from None


def scenario_path(given: str | None) -> Path:
    path = Path(given or DEFAULT_SCENARIO)
    if given is None and not path.is_file():  # run outside the checkout: use the shipped copy
        path = Path(__file__).resolve().parents[2] / DEFAULT_SCENARIO
    return path


def load(given: str | None) -> Scenario:
    from marketeq.scenario_files import load_scenario

    return load_scenario(scenario_path(given))


def console(quiet: bool = False):  # noqa: ANN201 - a rich Console
    from rich.console import Console

    return Console(quiet=quiet, highlight=False)


def metrics_table(result, title: str):  # noqa: ANN001, ANN201 - a RunResult -> a rich Table
    """The final metrics, with the oracle's beside them when the result has one."""
    from rich.table import Table

    from marketeq.results import metric_rows

    if result.oracle_paths is not None and not result.oracle_metrics:  # a file from before they were stored
        from marketeq.api import with_oracle_metrics

        result = with_oracle_metrics(result)
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column(result.solver, justify="right")
    if result.oracle_name and not result.solver.startswith("oracle"):
        table.add_column(f"oracle ({result.oracle_name})", justify="right")
    for name, value, oracle in metric_rows(result):
        table.add_row(name, value, *([oracle] if len(table.columns) == 3 else []))
    return table


def default_output(scenario: Scenario, suffix: str = "") -> Path:
    return Path("results") / f"{scenario.name}{suffix}.h5"


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
