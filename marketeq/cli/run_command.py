"""``marketeq run``: solve a scenario and write its result, with a checkpoint beside it until it completes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from marketeq.cli.common import DEFAULT_SCENARIO, CliError, console, default_output, load, metrics_table
from marketeq.cli.signals import interrupts


def register(sub: Any) -> None:  # the parser's subparsers
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


def resume_from(output: Path, checkpoint: Path) -> Path | None:
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
    from marketeq.api import runnable, solve, with_oracle
    from marketeq.callbacks import ProgressBar
    from marketeq.hdf5 import checkpoint_path, write_result
    from marketeq.memory import estimate_memory
    from marketeq.oracles import reference_name
    from marketeq.solvers.events import RunControl

    scenario = load(args.scenario)
    runnable(scenario)  # before any file or line is written
    output = Path(args.output) if args.output else default_output(scenario)
    output.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoint_path(output)
    resume = resume_from(output, checkpoint) if args.resume else None
    if not args.resume and checkpoint.exists():  # never overwrite unfinished work by a forgotten flag
        raise CliError(f"{checkpoint} holds an unfinished run for {output}: add --resume to continue it, or "
                       "delete it to start again")
    out = console(args.quiet)
    out.print(f"{scenario.name}: {scenario.n_agents} agents, about "
              f"{estimate_memory(scenario).peak / 2**30:.2g} GiB of memory (estimate)")
    control = RunControl()

    def stopped(partial: Any) -> None:  # a RunResult without test-set paths: on disk before the evaluation
        write_result(partial, output, compress=False)
        print(f"marketeq: partial result in {output}; evaluating it on the test set (interrupt again to keep "
              "it without)", file=sys.stderr)

    with interrupts(control):
        callbacks = [] if args.quiet else [ProgressBar(out)]
        result = solve(scenario, callbacks, control, device=args.device, seed=args.seed,
                       checkpoint=checkpoint, resume=resume, partial=stopped)
        # an interrupted run is written without gzip (seconds, not minutes, for a thousand agents) at each
        # stage: without test-set paths, with them, then compressed with its oracle comparison
        write_result(result, output, compress=result.status != "interrupted")
        if result.status == "interrupted":
            if reference_name(result.scenario) is not None:
                print(f"marketeq: partial result in {output}; adding the oracle comparison (interrupt again "
                      "to keep it without)", file=sys.stderr)
                result = with_oracle(result)
            write_result(result, output)
    if result.status != "interrupted":  # the result supersedes it (a diverged run would diverge again)
        checkpoint.unlink(missing_ok=True)
    out.print(metrics_table(result, f"{result.scenario.name}: {result.status}, {result.wall_time_s:.1f} s, "
                                    f"{result.provenance['device']}, {result.provenance['dtype']}, "
                                    f"seed {result.provenance['seed']}"))
    out.print(f"wrote {output}")
    if result.status == "completed" and result.message:
        out.print(result.message)  # the verdict of an adaptive run: converged or budget_exhausted
    if result.status != "completed":
        hint = (f"; continue it with --resume (checkpoint {checkpoint})" if checkpoint.exists() else
                "; try lower learning rates or solver.grad_clip" if result.status == "diverged" else "")
        print(f"marketeq: run {result.status}: {result.message}{hint}", file=sys.stderr)
        return 1
    return 0
