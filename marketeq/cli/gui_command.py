"""``marketeq gui``: the one door from the command line into the desktop app (needs ``marketeq[gui]``)."""

from __future__ import annotations

import argparse
from typing import Any

from marketeq.cli.common import optional_dependency


def register(sub: Any) -> None:  # the parser's subparsers
    gui = sub.add_parser("gui", help="open the desktop app")
    gui.add_argument("scenario", nargs="?")
    gui.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    with optional_dependency("the desktop app", "PySide6 and pyqtgraph", "gui"):
        from gui.app import main as gui_main
    return gui_main([args.scenario] if args.scenario else [])
