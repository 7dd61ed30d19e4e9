"""``marketeq sweep`` and ``marketeq predict``: run a sweep file's trials; plot what they predict."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from marketeq.cli.common import CliError, console


def register(sub: Any) -> None:  # the parser's subparsers
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from marketeq.sweeps import load_sweep, run_sweep
    from marketeq.sweeps.ray_backend import RayUnavailable

    if args.address and args.backend != "ray":
        raise CliError(f"--address {args.address} needs --backend ray")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers {args.workers}: give a number of worker processes >= 1")
    sweep = load_sweep(args.sweep)
    output = Path(args.output) if args.output else Path("results") / "sweeps" / sweep.name
    out = console(args.quiet)
    try:
        outcome = run_sweep(sweep, output, backend=args.backend, workers=args.workers, address=args.address,
                            console=out, progress=not args.quiet)
    except RayUnavailable as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:  # the trials run in worker processes: the finished ones are kept
        print(f"marketeq: sweep interrupted; the finished trials are in {output} (run again to go on)",
              file=sys.stderr)
        return 130
    out.print(f"{sweep.name}: {len(sweep.trials)} trials, {outcome.ran} run now, {outcome.reused} "
              f"reused, {len(outcome.failed)} failed, {outcome.wall_time_s:.1f} s "
              f"({args.backend} backend)")
    for row in outcome.failed:
        out.print(f"  [red]failed[/] trial {row['trial']} ({row['method']}, {row['file']}): "
                  f"{escape(row['message'])}")
    if outcome.summary:
        out.print(f"wrote {outcome.summary[0]} and {outcome.summary[1]}")
    return 1 if outcome.failed else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from marketeq.sweeps import predictions_figure

    path = predictions_figure(args.sweep_dir, args.output, x=args.x)
    print(f"wrote {path}")
    return 0
