"""The ``marketeq`` command: run, validate, oracle, show, gap, gui.

Every anticipated failure (bad scenario, bad result or checkpoint file, unavailable device, a run that
would not fit in memory) is one line on stderr and exit code 2. ``run`` keeps a checkpoint beside its
output (``OUTPUT.ckpt``) until the run completes; ``run --resume`` continues from it. The first Ctrl-C
(SIGINT) or SIGTERM stops after the current iteration and writes a partial result; a second one aborts.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from marketeq.scenario import Scenario, ScenarioError, load_scenario

DEFAULT_SCENARIO = "scenarios/quickstart.toml"
DEFAULT_GAP_ITERATIONS = 200  # marketeq.gap.DEFAULT_ITERATIONS (not imported: it pulls in torch)
EXIT_USAGE = 2


class CliError(Exception):
    """An error that the CLI reports as one line."""


class Aborted(BaseException):
    """A second interrupt: leave at once (atomic writes keep every file whole)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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


@contextmanager
def _interrupts(control: Any) -> Iterator[None]:  # a RunControl
    """First SIGINT or SIGTERM: stop after this iteration; a second one raises :class:`Aborted`."""

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        if control.stop_requested:
            raise Aborted(signum)
        control.request_stop()
        print("marketeq: stopping after this iteration; a checkpoint and a partial result follow "
              "(press Ctrl-C again to abort)", file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _resume_from(output: Path, checkpoint: Path) -> Path | None:
    """The checkpoint to continue from, None to start afresh when the run never saved one."""
    from marketeq.hdf5 import read_result

    if checkpoint.exists():
        return checkpoint
    if output.exists() and read_result(output).status == "completed":
        raise CliError(f"{output}: nothing to resume, it is a completed result and {checkpoint} does not "
                       "exist; run without --resume to start again")
    print(f"marketeq: no checkpoint {checkpoint} yet; starting from the beginning", file=sys.stderr)
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from marketeq.api import solve, with_oracle
    from marketeq.callbacks import ProgressBar
    from marketeq.hdf5 import checkpoint_path, write_result
    from marketeq.memory import estimate_memory
    from marketeq.oracles import reference_name
    from marketeq.solvers.events import RunControl

    scenario = _load(args.scenario)
    output = Path(args.output) if args.output else _default_output(scenario)
    output.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoint_path(output)
    resume = _resume_from(output, checkpoint) if args.resume else None
    if not args.resume and checkpoint.exists():  # never overwrite unfinished work by a forgotten flag
        raise CliError(f"{checkpoint} holds an unfinished run for {output}: add --resume to continue it, or "
                       "delete it to start again")
    console = _console(args.quiet)
    console.print(f"{scenario.name}: {scenario.n_agents} agents, about "
                  f"{estimate_memory(scenario).peak / 2**30:.2g} GiB of memory (estimate)")
    control = RunControl()
    with _interrupts(control):
        callbacks = [] if args.quiet else [ProgressBar(console)]
        result = solve(scenario, callbacks, control, device=args.device, seed=args.seed,
                       checkpoint=checkpoint, resume=resume)
        # an interrupted run is written without gzip (seconds, not minutes, for a thousand agents), then
        # again, compressed, with its oracle comparison
        write_result(result, output, compress=result.status != "interrupted")
        if result.status == "interrupted":
            if reference_name(result.scenario) is not None:
                print(f"marketeq: partial result in {output}; adding the oracle comparison (interrupt again "
                      "to keep it without)", file=sys.stderr)
                result = with_oracle(result)
            write_result(result, output)
    if result.status != "interrupted":  # the result supersedes it (a diverged run would diverge again)
        checkpoint.unlink(missing_ok=True)
    console.print(_metrics_table(result, f"{result.scenario.name}: {result.status}, "
                                         f"{result.wall_time_s:.1f} s, {result.provenance['device']}, "
                                         f"{result.provenance['dtype']}, seed {result.provenance['seed']}"))
    console.print(f"wrote {output}")
    if result.status == "completed" and result.message:
        console.print(result.message)  # the verdict of an adaptive run: converged or budget_exhausted
    if result.status != "completed":
        hint = (f"; continue it with --resume (checkpoint {checkpoint})" if checkpoint.exists() else
                "; try lower learning rates or solver.grad_clip" if result.status == "diverged" else "")
        print(f"marketeq: run {result.status}: {result.message}{hint}", file=sys.stderr)
        return 1
    return 0


def _schedule_summary(scenario: Scenario) -> str:
    settings = scenario.solver
    if settings.schedule == "adaptive":
        return (f"adaptive schedule (tolerance {settings.tolerance:g}, at most {settings.max_rounds} rounds or "
                f"{settings.max_minutes:g} minutes)")
    return f"{settings.rounds} rounds, {settings.total_iterations} iterations"


def cmd_validate(args: argparse.Namespace) -> int:
    from marketeq.memory import estimate_memory
    from marketeq.populations import population_summary

    scenario = _load(args.scenario)
    m = scenario.market
    need = estimate_memory(scenario).peak
    print(f"{_scenario_path(args.scenario)}: ok — {scenario.name}: {scenario.n_agents} agents, "
          f"q = {scenario.frictions.q}, lambda = {scenario.frictions.lam}, T = {m.horizon}, K = {m.steps}, "
          f"mu {scenario.solver.mu_mode}, {_schedule_summary(scenario)}, about {need / 2**30:.2g} GiB of memory")
    print(f"  {population_summary(scenario)}")
    return 0


def cmd_oracle(args: argparse.Namespace) -> int:
    from marketeq.api import oracle_result
    from marketeq.hdf5 import write_result
    from marketeq.oracles.pde import parse_grid

    scenario = _load(args.scenario)
    result = oracle_result(scenario, args.method, None if args.grid is None else parse_grid(args.grid))
    if result is None:
        raise CliError(f"{scenario.name}: no oracle for q = {scenario.frictions.q} with {scenario.n_agents} "
                       "agents (lambda = 0, q = 2, or two agents with lambda > 0)")
    console = _console()
    console.print(_metrics_table(result, f"{scenario.name}: {result.oracle_name} oracle"))
    if result.message:
        console.print(result.message)
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

    result = read_result(args.results, method=args.method)
    if args.json:
        print(json.dumps(_json_safe(show_json(result)), indent=1))
        return 0
    console = _console()
    console.print(_metrics_table(result, f"{args.results}: {result.scenario.name}, {result.solver}, "
                                         f"{result.status}"))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from marketeq.callbacks import ProgressBar
    from marketeq.compare import COLUMNS, METHODS, compare, parse_methods, plot_comparison, table_rows
    from marketeq.hdf5 import write_comparison

    scenario = _load(args.scenario)
    methods = parse_methods(args.methods)
    console = _console(args.quiet)
    output = Path(args.output) if args.output else _default_output(scenario, "_compare")
    output.parent.mkdir(parents=True, exist_ok=True)

    def callbacks_for(name: str) -> list[Any]:
        console.print(f"[bold]{name}[/]: {METHODS[name].label}")
        return [] if args.quiet else [ProgressBar(console)]

    if args.gap_iterations < 0:
        raise CliError(f"--gap-iterations {args.gap_iterations}: must be >= 0 (0 skips the equilibrium gap)")
    results = compare(scenario, methods, callbacks_for, device=args.device, seed=args.seed,
                      gap_iterations=args.gap_iterations)
    write_comparison(results, output)
    pngs = plot_comparison(results, output.with_suffix(""))
    table = Table(title=f"{scenario.name}: {len(results)} methods, seed {args.seed or scenario.run.seed}, "
                        f"{scenario.run.test_paths} test paths", title_justify="left")
    for heading in ("method", "status", *(h for _, h in COLUMNS), "wall time"):
        table.add_column(heading, justify="left" if heading in ("method", "status") else "right")
    for row in table_rows(results):
        table.add_row(*row)
    console.print(table)
    for name in methods:
        if name not in results:
            console.print(f"{name}: does not apply to this scenario (left out)")
        elif results[name].message:
            console.print(f"{name}: {results[name].message}")
    console.print(f"wrote {output} and {', '.join(p.name for p in pngs)}")
    return 0


def _gap_table(report, title: str):  # noqa: ANN001, ANN202
    from rich.table import Table

    def pm(value: float, se: float) -> str:
        return f"{value:.4g} ± {se:.2g}"

    table = Table(title=title, title_justify="left")
    for name in ("agent", "gap", "J (run)", "J (best resp.)", "gain vs no trade", "gap/gain"):
        table.add_column(name, justify="left" if name == "agent" else "right")
    for n, agent in enumerate(report.agents):
        ratio = report.gap[n] / report.gain[n] if report.gain[n] != 0 else float("nan")
        table.add_row(agent, pm(report.gap[n], report.gap_se[n]), f"{report.own_J[n]:.6g}",
                      f"{report.best_J[n]:.6g}", pm(report.gain[n], report.gain_se[n]), f"{ratio:.2%}")
    table.add_row("total", pm(report.total_gap, report.total_gap_se), f"{report.own_J.sum():.6g}",
                  f"{report.best_J.sum():.6g}", pm(report.total_gain, report.total_gain_se),
                  f"{report.ratio:.2%}", style="bold")
    return table


def cmd_gap(args: argparse.Namespace) -> int:
    from marketeq.gap import result_gap
    from marketeq.hdf5 import read_result, write_gap

    if args.iterations < 0:
        raise CliError(f"--iterations {args.iterations}: must be >= 0")
    result = read_result(args.results)
    try:
        report = result_gap(result, args.iterations)
    except ValueError as exc:
        raise CliError(f"{args.results}: {exc}") from None
    if not args.no_write:
        write_gap(report, args.results)
    if args.json:
        print(json.dumps(_json_safe(report.to_dict()), indent=1))
        return 0
    console = _console()
    title = (f"{args.results}: {result.scenario.name}, {result.solver}: equilibrium gap = J_n(best response) "
             "- J_n(run), mean ± standard error over the evaluation paths")
    console.print(_gap_table(report, title))
    console.print(f"best responses trained {report.iterations} iterations on {report.training}; evaluated on "
                  f"{report.eval_paths} test paths; {report.wall_time_s:.1f} s"
                  + ("" if args.no_write else f"; stored in {args.results} (/gap)"))
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from marketeq.sweeps import load_sweep, run_sweep
    from marketeq.sweeps.ray_backend import RayUnavailable

    if args.address and args.backend != "ray":
        raise CliError(f"--address {args.address} needs --backend ray")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers {args.workers}: give a number of worker processes >= 1")
    sweep = load_sweep(args.sweep)
    output = Path(args.output) if args.output else Path("results") / "sweeps" / sweep.name
    console = _console(args.quiet)
    try:
        outcome = run_sweep(sweep, output, backend=args.backend, workers=args.workers, address=args.address,
                            console=console, progress=not args.quiet)
    except RayUnavailable as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"marketeq: sweep interrupted; the finished trials are in {output} (run again to go on)",
              file=sys.stderr)
        return 130
    from rich.markup import escape

    console.print(f"{sweep.name}: {len(sweep.trials)} trials, {outcome.ran} run now, {outcome.reused} "
                  f"reused, {len(outcome.failed)} failed, {outcome.wall_time_s:.1f} s "
                  f"({args.backend} backend)")
    for row in outcome.failed:
        console.print(f"  [red]failed[/] trial {row['trial']} ({row['method']}, {row['file']}): "
                      f"{escape(row['message'])}")
    if outcome.summary:
        console.print(f"wrote {outcome.summary[0]} and {outcome.summary[1]}")
    return 1 if outcome.failed else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from marketeq.sweeps import predictions_figure

    path = predictions_figure(args.sweep_dir, args.output, x=args.x)
    print(f"wrote {path}")
    return 0


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
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run from its checkpoint OUTPUT.ckpt (kept beside the "
                          "output until the run completes)")
    run.set_defaults(func=cmd_run)
    validate = sub.add_parser("validate", help="check a scenario file")
    validate.add_argument("scenario")
    validate.set_defaults(func=cmd_validate)
    oracle = sub.add_parser("oracle", help="the scenario's oracle on its test set (exact, or the numerical "
                                           "PDE reference for two agents with power costs)")
    oracle.add_argument("scenario")
    oracle.add_argument("-o", "--output", help="write the oracle as a result file")
    oracle.add_argument("--method", default="auto",
                        help="auto (the reference: frictionless, riccati, or pde for two agents with q < 2), "
                             "pde, leading-order, ...")
    oracle.add_argument("--grid", nargs="+", type=int, metavar="N",
                        help="the PDE's grid: NPHI NW [SUBSTEPS] (default 401 31 4)")
    oracle.set_defaults(func=cmd_oracle)
    show = sub.add_parser("show", help="print a result file's metrics")
    show.add_argument("results")
    show.add_argument("--json", action="store_true", help="one JSON object with metrics and curves")
    show.add_argument("--method", help="the method to show from a comparison file (marketeq compare)")
    show.set_defaults(func=cmd_show)
    comp = sub.add_parser("compare", help="run several methods on one scenario and tabulate them")
    comp.add_argument("scenario")
    comp.add_argument("--methods", default="rgan,rgan-known,combo,fbsde,oracle",
                      help="comma-separated: rgan, rgan-known, combo, fbsde, oracle (default: all)")
    comp.add_argument("-o", "--output", help="comparison file (default results/<scenario name>_compare.h5); "
                                             "the PNG plots go next to it")
    comp.add_argument("--device", choices=["cpu", "cuda", "auto"], help="override run.device")
    comp.add_argument("--seed", type=int, help="override run.seed")
    comp.add_argument("--gap-iterations", type=int, default=DEFAULT_GAP_ITERATIONS,
                      help="training iterations of each method's best responses (0: no equilibrium gap)")
    comp.add_argument("--quiet", action="store_true", help="no progress bars")
    comp.set_defaults(func=cmd_compare)
    gap = sub.add_parser("gap", help="equilibrium gap: what each agent gains by best-responding")
    gap.add_argument("results", help="result file (.h5) of a run or of 'marketeq oracle -o'")
    gap.add_argument("--iterations", type=int, default=DEFAULT_GAP_ITERATIONS,
                     help="training iterations of the best responses")
    gap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    gap.add_argument("--no-write", action="store_true", help="do not store the gap in the result file")
    gap.set_defaults(func=cmd_gap)
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
    sweep = sub.add_parser("sweep", help="run a sweep file's trials and write their summary table")
    sweep.add_argument("sweep", help="sweep TOML file (see scenarios/sweeps/)")
    sweep.add_argument("-o", "--output", help="sweep directory (default results/sweeps/<sweep name>)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local",
                       help="local process pool (default) or Ray")
    sweep.add_argument("--workers", type=int, help="trials run at once (default: the number of CPUs)")
    sweep.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)
    predict = sub.add_parser("predict", help="plot a sweep's predictions against its swept parameter")
    predict.add_argument("sweep_dir", help="directory written by 'marketeq sweep'")
    predict.add_argument("-o", "--output", default="predictions.png", help="figure file (.png, .svg, .pdf)")
    predict.add_argument("--x", help="the parameter on the x axis (default: the sweep's first)")
    predict.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from marketeq.hdf5 import ResultFileError

    try:
        return int(args.func(args))
    except (ScenarioError, ResultFileError, CliError) as exc:
        print(f"marketeq: {exc}", file=sys.stderr)
    except (Aborted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Aborted) else signal.SIGINT
        print(f"marketeq: aborted by {signal.Signals(signum).name}; files already written are intact",
              file=sys.stderr)
        return 128 + signum
    except RuntimeError as exc:
        if "device" not in str(exc):
            raise
        print(f"marketeq: {exc}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
