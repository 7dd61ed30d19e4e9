"""``marketeq validate`` and ``marketeq oracle``: what a scenario file says, and its reference answer."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from marketeq.cli.common import CliError, console, load, metrics_table, scenario_path


def register(sub: Any) -> None:  # the parser's subparsers
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


def assets_note(scenario: Any) -> str:
    if not any(np.ravel(scenario.frictions.lam)):
        return "frictionless: 'marketeq oracle' gives the exact answer"
    if scenario.frictions.q == 2:
        return "'marketeq run' solves it with the default settings; 'marketeq oracle' gives the exact answer"
    return "power costs: no solver or exact answer for several assets yet"


def cmd_validate(args: argparse.Namespace) -> int:
    from marketeq.memory import estimate_memory
    from marketeq.populations import population_summary

    scenario = load(args.scenario)
    m = scenario.market
    if scenario.n_assets > 1:  # no solver handles several assets yet: no schedule or memory to estimate
        print(f"{scenario_path(args.scenario)}: ok — {scenario.name}: {scenario.n_assets} assets, "
              f"{scenario.n_agents} agents, q = {scenario.frictions.q}, lambda = {scenario.frictions.lam}, "
              f"T = {m.horizon}, K = {m.steps}; {assets_note(scenario)}")
        print(f"  {population_summary(scenario)}")
        return 0
    need = estimate_memory(scenario).peak
    print(f"{scenario_path(args.scenario)}: ok — {scenario.name}: {scenario.n_agents} agents, "
          f"q = {scenario.frictions.q}, lambda = {scenario.frictions.lam}, T = {m.horizon}, K = {m.steps}, "
          f"mu {scenario.solver.mu_source}, {scenario.solver.summary()}, about {need / 2**30:.2g} GiB of memory")
    print(f"  {population_summary(scenario)}")
    return 0


def cmd_oracle(args: argparse.Namespace) -> int:
    from marketeq.api import oracle_result
    from marketeq.hdf5 import write_result
    from marketeq.oracles.pde import parse_grid

    scenario = load(args.scenario)
    result = oracle_result(scenario, args.method, None if args.grid is None else parse_grid(args.grid))
    if result is None and scenario.n_assets > 1:
        raise CliError(f"{scenario.name}: no exact answer for {scenario.n_assets} assets with q = "
                       f"{scenario.frictions.q} (the matrix-Riccati oracle needs q = 2, the frictionless one "
                       "lambda = 0)")
    if result is None:
        raise CliError(f"{scenario.name}: no oracle for q = {scenario.frictions.q} with {scenario.n_agents} "
                       "agents (lambda = 0, q = 2, or two agents with lambda > 0)")
    out = console()
    out.print(metrics_table(result, f"{scenario.name}: {result.oracle_name} oracle"))
    if result.message:
        out.print(result.message)
    if args.output:
        write_result(result, args.output)
        out.print(f"wrote {args.output}")
    return 0
