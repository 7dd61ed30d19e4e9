"""The ``marketeq`` command: run, validate, oracle, show, gui.

Every anticipated failure (bad scenario, bad result file, unavailable device) is one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from marketeq.scenario import Scenario, ScenarioError, load_scenario

DEFAULT_SCENARIO = "scenarios/quickstart.toml"
EXIT_USAGE = 2


class CliError(Exception):
    """An error that the CLI reports as one line."""


def _scenario_path(given: str | None) -> Path:
    path = Path(given or DEFAULT_SCENARIO)
    if given is None and not path.is_file():  # run outside the checkout: use the shipped copy
        path = Path(__file__).resolve().parents[1] / DEFAULT_SCENARIO
    return path


def _load(given: str | None) -> Scenario:
    return load_scenario(_scenario_path(given))


def _console(quiet: bool = False):  # noqa: ANN202
    from rich.console import Console

    return Console(quiet=quiet, highlight=False)


def _metrics_table(result, title: str):  # noqa: ANN001, ANN202
    from rich.table import Table

    from marketeq.api import metric_rows

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column(result.solver, justify="right")
    if result.oracle_name and not result.solver.startswith("oracle"):
        table.add_column(f"oracle ({result.oracle_name})", justify="right")
    for name, value, oracle in metric_rows(result):
        table.add_row(name, value, *([oracle] if len(table.columns) == 3 else []))
    return table


def _default_output(scenario: Scenario, suffix: str = "") -> Path:
    return Path("results") / f"{scenario.name}{suffix}.h5"


def cmd_run(args: argparse.Namespace) -> int:
    from marketeq.api import solve
    from marketeq.callbacks import ProgressBar
    from marketeq.hdf5 import write_result
    from marketeq.solvers.events import RunControl

    scenario = _load(args.scenario)
    console = _console(args.quiet)
    control = RunControl()

    def first_interrupt(signum: int, frame: Any) -> None:  # noqa: ARG001
        console.print("[yellow]stopping after this iteration (press Ctrl-C again to abort)[/]")
        control.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first_interrupt)
    try:
        callbacks = [] if args.quiet else [ProgressBar(console)]
        result = solve(scenario, callbacks, control, device=args.device, seed=args.seed)
    finally:
        signal.signal(signal.SIGINT, previous)
    output = Path(args.output) if args.output else _default_output(result.scenario)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_result(result, output)
    console.print(_metrics_table(result, f"{result.scenario.name}: {result.status}, "
                                         f"{result.wall_time_s:.1f} s, {result.provenance['device']}, "
                                         f"{result.provenance['dtype']}, seed {result.provenance['seed']}"))
    console.print(f"wrote {output}")
    if result.status != "completed":
        print(f"marketeq: run {result.status}: {result.message}", file=sys.stderr)
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    scenario = _load(args.scenario)
    m = scenario.market
    print(f"{_scenario_path(args.scenario)}: ok — {scenario.name}: {scenario.n_agents} agents, "
          f"q = {scenario.frictions.q}, lambda = {scenario.frictions.lam}, T = {m.horizon}, K = {m.steps}, "
          f"mu {scenario.solver.mu_mode}, {scenario.solver.rounds} rounds, "
          f"{scenario.solver.total_iterations} iterations")
    return 0


def cmd_oracle(args: argparse.Namespace) -> int:
    from marketeq.api import oracle_result
    from marketeq.hdf5 import write_result

    scenario = _load(args.scenario)
    result = oracle_result(scenario)
    if result is None:
        raise CliError(f"{scenario.name}: no oracle for q = {scenario.frictions.q} with lambda > 0 "
                       "(exact oracles: lambda = 0, or q = 2)")
    console = _console()
    console.print(_metrics_table(result, f"{scenario.name}: {result.oracle_name} oracle"))
    if args.output:
        write_result(result, args.output)
        console.print(f"wrote {args.output}")
    return 0


def show_json(result) -> dict[str, Any]:  # noqa: ANN001
    """The machine-readable summary printed by ``marketeq show --json``."""
    p = result.paths
    summary: dict[str, Any] = {
        "scenario": result.scenario.name, "solver": result.solver, "status": result.status,
        "message": result.message, "oracle": result.oracle_name, "wall_time_s": result.wall_time_s,
        "provenance": result.provenance,
        "metrics": {k: {"value": v.value, "stderr": v.stderr} for k, v in result.metrics.items()},
    }
    for key in ("S0", "mu0", "sigma0"):
        summary[key] = result.metrics[key].value if key in result.metrics else None
    if p is not None:
        summary.update(t=p.t.tolist(), sigma=p.sigma.mean(0).tolist(), mu_mean=p.mu.mean(0).tolist())
    if result.oracle_paths is not None:
        o = result.oracle_paths
        summary.update(oracle_sigma=o.sigma.mean(0).tolist(), oracle_mu_mean=o.mu.mean(0).tolist())
    return summary


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def cmd_show(args: argparse.Namespace) -> int:
    from marketeq.hdf5 import read_result

    result = read_result(args.results)
    if args.json:
        print(json.dumps(_json_safe(show_json(result)), indent=1))
        return 0
    console = _console()
    console.print(_metrics_table(result, f"{args.results}: {result.scenario.name}, {result.solver}, "
                                         f"{result.status}"))
    return 0


def cmd_train_agent(args: argparse.Namespace) -> int:
    try:
        from marketeq.rl.train_command import run
    except ImportError as exc:
        raise CliError(f"train-agent needs gymnasium and stable-baselines3 ({exc.name} missing): "
                       "pip install 'marketeq[rl]'") from None
    from marketeq.rl.markets import MarketError

    try:
        run(args, _console())
    except MarketError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from gui.app import main as gui_main
    except ImportError as exc:
        raise CliError(f"the desktop app needs PySide6 and pyqtgraph ({exc.name} missing): "
                       "pip install 'marketeq[gui]'") from None
    return gui_main([args.scenario] if args.scenario else [])


def build_parser() -> argparse.ArgumentParser:
    from marketeq import __version__

    parser = argparse.ArgumentParser(prog="marketeq", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"marketeq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="solve a scenario and write its HDF5 result")
    run.add_argument("scenario", nargs="?", help=f"scenario TOML file (default {DEFAULT_SCENARIO})")
    run.add_argument("-o", "--output", help="result file (default results/<scenario name>.h5)")
    run.add_argument("--device", choices=["cpu", "cuda", "auto"], help="override run.device")
    run.add_argument("--seed", type=int, help="override run.seed")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")
    run.set_defaults(func=cmd_run)
    validate = sub.add_parser("validate", help="check a scenario file")
    validate.add_argument("scenario")
    validate.set_defaults(func=cmd_validate)
    oracle = sub.add_parser("oracle", help="the scenario's exact oracle on its test set")
    oracle.add_argument("scenario")
    oracle.add_argument("-o", "--output", help="write the oracle as a result file")
    oracle.set_defaults(func=cmd_oracle)
    show = sub.add_parser("show", help="print a result file's metrics")
    show.add_argument("results")
    show.add_argument("--json", action="store_true", help="one JSON object with metrics and curves")
    show.set_defaults(func=cmd_show)
    train = sub.add_parser("train-agent", help="train one agent's RL policy in a solved market")
    train.add_argument("results", help="a run's result file (.h5), or a scenario (.toml): its oracle")
    train.add_argument("--algo", choices=["sac", "td3", "ppo"], default="sac", help="sb3 algorithm")
    train.add_argument("--agent", type=int, default=1, help="which agent trains, 1..N (default 1)")
    train.add_argument("-o", "--output", help="write the trained sb3 model to this .zip file")
    train.add_argument("--timesteps", type=int, default=500_000, help="training transitions (default 500000)")
    train.add_argument("--seed", type=int, help="training seed (default: the scenario's run.seed)")
    train.add_argument("--market-state", action="store_true", help="observe mu, sigma and all positions")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train_agent)
    gui = sub.add_parser("gui", help="open the desktop app")
    gui.add_argument("scenario", nargs="?")
    gui.set_defaults(func=cmd_gui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from marketeq.hdf5 import ResultFileError

    try:
        return int(args.func(args))
    except (ScenarioError, ResultFileError, CliError) as exc:
        print(f"marketeq: {exc}", file=sys.stderr)
    except RuntimeError as exc:
        if "device" not in str(exc):
            raise
        print(f"marketeq: {exc}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
