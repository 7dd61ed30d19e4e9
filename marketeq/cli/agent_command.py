"""``marketeq train-agent``: train one agent's RL policy in a solved market (needs ``marketeq[rl]``)."""

from __future__ import annotations

import argparse
from typing import Any

from marketeq.cli.common import CliError, console, optional_dependency


def register(sub: Any) -> None:  # the parser's subparsers
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


def cmd_train_agent(args: argparse.Namespace) -> int:
    with optional_dependency("train-agent", "gymnasium and stable-baselines3", "rl"):
        from marketeq.rl.train_command import run
    from marketeq.rl.markets import MarketError

    try:
        run(args, console())
    except MarketError as exc:
        raise CliError(str(exc)) from None
    return 0
