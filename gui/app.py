"""The QApplication: style, theme, command line; ``main(argv)`` is what ``marketeq gui`` calls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from gui import dialogs
from gui.main_window import MainWindow
from gui.scenario_form import shipped_scenarios
from gui.theme import THEMES, palette

DEFAULT_SCENARIO = "quickstart.toml"


def application(theme: str | None = "dark") -> QApplication:
    """The process's QApplication (created once), in the Fusion style with the theme's palette."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("marketeq")
    app.setStyle("Fusion")
    app.setOrganizationName("marketeq")
    app.setPalette(palette(THEMES[theme or "dark"]))
    pg.setConfigOptions(antialias=True)
    return app


def default_scenario() -> Path | None:
    return next((p for p in shipped_scenarios() if p.name == DEFAULT_SCENARIO), None)


def saved_theme() -> str:
    name = dialogs.settings().value("window/theme", "dark", str)
    return name if name in THEMES else "dark"


def build_window(scenario: str | None = None, theme: str | None = None) -> MainWindow:
    """The main window with a scenario loaded (the shipped quickstart when none is given), at the size it
    had when last closed or sized to the screen, in the given theme or the one last used."""
    theme = theme or saved_theme()
    application(theme)
    window = MainWindow(theme)
    window.fit_to_screen()
    path = Path(scenario) if scenario else default_scenario()
    if path is not None:
        window.open_scenario(path)
    return window


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="marketeq gui", description="marketeq's desktop app")
    parser.add_argument("scenario", nargs="?", help="scenario TOML file (default: the shipped quickstart)")
    parser.add_argument("--theme", choices=sorted(THEMES), default=None,
                        help="colour theme (default: the one last used, else dark)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Open the app; returns the process exit code."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    window = build_window(args.scenario, args.theme)
    window.show()
    return int(QApplication.instance().exec())
