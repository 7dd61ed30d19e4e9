"""``marketeq compare``: several methods on one scenario, one comparison file, a table and plots."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from marketeq.cli.common import DEFAULT_GAP_ITERATIONS, CliError, console, default_output, load


def register(sub: Any) -> None:  # the parser's subparsers
    comp = sub.add_parser("compare", help="run several methods on one scenario and tabulate them")
    comp.add_argument("scenario")
    comp.add_argument("--methods", default="rlink,rlink-learned,joint,fbsde,oracle",
                      help="comma-separated: rlink (the scenario's settings), rlink-learned, rlink-known, "
                           "rlink-implied, joint, fbsde, oracle, leading-order "
                           "(default: rlink, rlink-learned, joint, fbsde, oracle)")
    comp.add_argument("-o", "--output", help="comparison file (default results/<scenario name>_compare.h5); "
                                             "the PNG plots go next to it")
    comp.add_argument("--device", choices=["cpu", "cuda", "auto"], help="override run.device")
    comp.add_argument("--seed", type=int, help="override run.seed")
    comp.add_argument("--gap-iterations", type=int, default=DEFAULT_GAP_ITERATIONS,
                      help="training iterations of each method's best responses (0: no equilibrium gap)")
    comp.add_argument("--quiet", action="store_true", help="no progress bars")
    comp.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from marketeq.callbacks import ProgressBar
    from marketeq.compare import COLUMNS, METHODS, compare, parse_methods, plot_comparison, table_rows
    from marketeq.hdf5 import write_comparison

    from marketeq.api import one_asset_method

    scenario = load(args.scenario)
    one_asset_method(scenario)  # a comparison of solvers: none solves several assets yet
    methods = parse_methods(args.methods)
    out = console(args.quiet)
    output = Path(args.output) if args.output else default_output(scenario, "_compare")
    output.parent.mkdir(parents=True, exist_ok=True)

    def callbacks_for(name: str) -> list[Any]:
        out.print(f"[bold]{name}[/]: {METHODS[name].label}")
        return [] if args.quiet else [ProgressBar(out)]

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
    out.print(table)
    for name in methods:
        if name not in results:
            out.print(f"{name}: does not apply to this scenario (left out)")
        elif results[name].message:
            out.print(f"{name}: {results[name].message}")
    out.print(f"wrote {output} and {', '.join(p.name for p in pngs)}")
    return 0
