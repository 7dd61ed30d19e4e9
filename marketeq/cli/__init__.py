"""The ``marketeq`` command: run, validate, oracle, show, gap, compare, train-agent, gui, sweep, predict.

Every anticipated failure (bad scenario, bad result or checkpoint file, unavailable device, a run that
would not fit in memory) is one line on stderr and exit code 2. ``run`` keeps a checkpoint beside its
output (``OUTPUT.ckpt``) until the run completes; ``run --resume`` continues from it. The first Ctrl-C
(SIGINT) or SIGTERM stops after the current iteration and writes a partial result; a second one aborts.

One module per command family, each registering its own sub-parser; the engine (and torch) is imported
inside the commands that compute, so ``--help``, ``validate`` and ``show`` stay instant.
"""

from __future__ import annotations

import argparse
import sys

from marketeq.cli import (
    agent_command,
    compare_command,
    gui_command,
    result_commands,
    run_command,
    scenario_commands,
    sweep_commands,
)
from marketeq.cli.common import EXIT_USAGE, CliError
from marketeq.cli.signals import Aborted, aborted
from marketeq.errors import DeviceUnavailable, ResultFileError

__all__ = ["CliError", "build_parser", "main"]

# In the order of ``marketeq --help``.
FAMILIES = (run_command, scenario_commands, result_commands, compare_command, agent_command, gui_command,
            sweep_commands)


def build_parser() -> argparse.ArgumentParser:
    from marketeq import __version__

    parser = argparse.ArgumentParser(prog="marketeq", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"marketeq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (Aborted, KeyboardInterrupt) as exc:
        return aborted(exc)
    except Exception as exc:
        if not isinstance(exc, _one_line_errors()):
            raise
        print(f"marketeq: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _one_line_errors() -> tuple[type[Exception], ...]:
    """The anticipated failures, reported as one line with exit code 2."""
    from marketeq.scenario import ScenarioError  # imported here: --help needs no pydantic models

    return ScenarioError, ResultFileError, CliError, DeviceUnavailable


if __name__ == "__main__":
    sys.exit(main())
