"""``marketeq train-agent``: train one agent's RL policy in a solved market and compare its utility."""

from __future__ import annotations

import argparse
from pathlib import Path

from marketeq.rl.markets import MarketError, as_market


def run(args: argparse.Namespace, console) -> None:  # noqa: ANN001 - a rich Console
    """Train, evaluate on the test set, print the comparison; MarketError for bad input."""
    import torch
    from rich.table import Table

    from marketeq.callbacks import ProgressBar
    from marketeq.results import format_metric
    from marketeq.rl.agent_training import evaluate_agent, save_learner, train_agent

    if args.timesteps < 1:
        raise MarketError(f"--timesteps {args.timesteps}: give a positive number of training transitions")
    output = Path(args.output) if args.output else None
    if output is not None and not output.parent.is_dir():  # say so before training, not after
        raise MarketError(f"-o {output}: directory {str(output.parent)!r} does not exist; create it first")
    market = as_market(Path(args.results))
    n = market.model.n_agents
    if not 1 <= args.agent <= n:
        names = ", ".join(market.scenario.agent_names)
        raise MarketError(f"--agent {args.agent}: {args.results} has {n} agents ({names}); give 1..{n}")
    agent = args.agent - 1
    seed = market.scenario.run.seed if args.seed is None else args.seed
    torch.manual_seed(seed)
    learner, policy = train_agent(market, agent, args.algo, args.timesteps, seed=seed,
                                  hidden=market.scenario.solver.agents_hidden, market_state=args.market_state,
                                  callbacks=[] if args.quiet else [ProgressBar(console)])
    report = evaluate_agent(market, agent, policy, market_state=args.market_state)
    table = Table(title=f"{market.scenario.name}, {report.name} (agent {args.agent}), {market.name}: utility "
                        f"J on {report.n_paths} test paths (mean ± standard error)", title_justify="left")
    table.add_column("policy")
    table.add_column("J", justify="right")
    table.add_column("J - J(equilibrium)", justify="right")
    table.add_row(f"sb3:{args.algo}", format_metric(report.policy),
                  format_metric(report.policy_minus_equilibrium))
    table.add_row("equilibrium", format_metric(report.equilibrium), "0")
    table.add_row("no trading", format_metric(report.no_trade), "")
    console.print(table)
    console.print(f"gain over not trading: {format_metric(report.policy_minus_no_trade)}; relative regret "
                  f"(J_eq - J)/(J_eq - J_no_trade) = {report.relative_regret:.4f}")
    if output is not None:
        console.print(f"wrote {save_learner(learner, output)}")
