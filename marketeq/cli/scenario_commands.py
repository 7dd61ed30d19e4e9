"""``marketeq validate`` and ``marketeq oracle``: what a scenario file says, and its reference answer."""

from __future__ import annotations

import argparse
from typing import Any

from marketeq.cli.common import CliError, console, load, metrics_table, scenario_path


def register(sub: Any) -> None:  # the parser's subparsers
    validate = sub.add_parser("validate", help="check a scenario file")
    validate.add_argument("scenario")
    validate.set_defaults(func=cmd_validate)
    oracle = sub.add_parser("oracle", help="the scenario's oracle on its test set (exact, or the "
                                           "leading-order approximation for two agents with power costs)")
    oracle.add_argument("scenario")
    oracle.add_argument("-o", "--output", help="write the oracle as a result file")
    oracle.set_defaults(func=cmd_oracle)


def cmd_validate(args: argparse.Namespace) -> int:
    from marketeq.memory import estimate_memory

    scenario = load(args.scenario)
    m = scenario.market
    need = estimate_memory(scenario).peak
    print(f"{scenario_path(args.scenario)}: ok — {scenario.name}: {scenario.n_agents} agents, "
          f"q = {scenario.frictions.q}, lambda = {scenario.frictions.lam}, T = {m.horizon}, K = {m.steps}, "
          f"mu {scenario.solver.mu_mode}, {scenario.solver.rounds} rounds, "
          f"{scenario.solver.total_iterations} iterations, about {need / 2**30:.2g} GiB of memory")
    return 0


def cmd_oracle(args: argparse.Namespace) -> int:
    from marketeq.api import oracle_result
    from marketeq.hdf5 import write_result

    scenario = load(args.scenario)
    result = oracle_result(scenario)
    if result is None:
        raise CliError(f"{scenario.name}: no oracle for q = {scenario.frictions.q} with {scenario.n_agents} "
                       "agents (exact: lambda = 0, or q = 2; approximate: two agents with one lambda)")
    out = console()
    out.print(metrics_table(result, f"{scenario.name}: {result.oracle_name} oracle"))
    if args.output:
        write_result(result, args.output)
        out.print(f"wrote {args.output}")
    return 0
