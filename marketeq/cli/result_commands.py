"""``marketeq show`` and ``marketeq gap``: read a result file; measure its equilibrium gap."""

from __future__ import annotations

import argparse
import json
from typing import Any

from marketeq.cli.common import DEFAULT_GAP_ITERATIONS, CliError, console, json_safe, metrics_table


def register(sub: Any) -> None:  # the parser's subparsers
    show = sub.add_parser("show", help="print a result file's metrics")
    show.add_argument("results")
    show.add_argument("--json", action="store_true", help="one JSON object with metrics and curves")
    show.add_argument("--method", help="the method to show from a comparison file (marketeq compare)")
    show.set_defaults(func=cmd_show)
    gap = sub.add_parser("gap", help="equilibrium gap: what each agent gains by best-responding")
    gap.add_argument("results", help="result file (.h5) of a run or of 'marketeq oracle -o'")
    gap.add_argument("--iterations", type=int, default=DEFAULT_GAP_ITERATIONS,
                     help="training iterations of the best responses")
    gap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    gap.add_argument("--no-write", action="store_true", help="do not store the gap in the result file")
    gap.set_defaults(func=cmd_gap)


def show_json(result) -> dict[str, Any]:  # noqa: ANN001 - a RunResult
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
    if result.scenario.n_assets > 1:
        summary.update(_assets_json(result))
    if p is not None:
        summary.update(t=p.t.tolist(), sigma=p.sigma.mean(0).tolist(), mu_mean=p.mu.mean(0).tolist())
    if result.oracle_paths is not None:
        o = result.oracle_paths
        summary.update(oracle_sigma=o.sigma.mean(0).tolist(), oracle_mu_mean=o.mu.mean(0).tolist())
    return summary


def _assets_json(result) -> dict[str, Any]:  # noqa: ANN001 - a RunResult
    """Several assets: S0, mu0 per asset and the matrix sigma0 from the metrics; the path means of the
    prices, holdings and rates with their asset axes (sigma and mu_mean have it already)."""
    d, m = result.scenario.n_assets, result.metrics
    value = lambda key: m[key].value if key in m else None  # noqa: E731
    out: dict[str, Any] = {
        "assets": d, "S0": [value(f"S0/{i + 1}") for i in range(d)],
        "mu0": [value(f"mu0/{i + 1}") for i in range(d)],
        "sigma0": [[value(f"sigma0/{i + 1},{j + 1}") for j in range(d)] for i in range(d)]}
    if result.paths is not None:
        p = result.paths
        out.update(S_mean=p.S.mean(0).tolist(), phi_mean=p.phi.mean(0).tolist(),
                   phidot_mean=p.phidot.mean(0).tolist())
    return out


def cmd_show(args: argparse.Namespace) -> int:
    from marketeq.hdf5 import read_result

    if args.json:
        result = read_result(args.results, method=args.method)
        print(json.dumps(json_safe(show_json(result)), indent=1))
        return 0
    result = read_result(args.results, method=args.method, arrays=False)  # the table needs no paths
    if result.oracle_name and not result.oracle_metrics and not result.solver.startswith("oracle"):
        result = read_result(args.results, method=args.method)  # older file: its oracle paths give them
    console().print(metrics_table(result, f"{args.results}: {result.scenario_name}, {result.solver}, "
                                          f"{result.status}"))
    return 0


def gap_table(report, title: str):  # noqa: ANN001, ANN201 - a GapReport -> a rich Table
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


def kept_text(report) -> str:  # noqa: ANN001 - a GapReport
    """Which training iteration each agent kept (0: its own policy, no deviation found), or nothing."""
    if report.selected is None or not report.valid_paths:
        return ""
    kept = ", ".join(str(int(k)) for k in report.selected)
    return f"iteration kept per agent (0 = the run's own policy): {kept}; "


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
        print(json.dumps(json_safe(report.to_dict()), indent=1))
        return 0
    title = (f"{args.results}: {result.scenario.name}, {result.solver}: equilibrium gap = J_n(best response) "
             "- J_n(run), mean ± standard error over the evaluation paths")
    out = console()
    out.print(gap_table(report, title))
    out.print(f"best responses trained {report.iterations} iterations on {report.training}; "
              f"{kept_text(report)}evaluated on {report.eval_paths} test paths; {report.wall_time_s:.1f} s"
              + ("" if args.no_write else f"; stored in {args.results} (/gap)"))
    return 0
