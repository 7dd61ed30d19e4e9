"""The menu bar: File, Run, View and Help, with shortcuts; the window enables the actions."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox

import marketeq
from gui.theme import THEMES

# The main window (any QMainWindow with the slots the actions call); not imported, so that the window may
# import this module without a cycle.
MainWindow = Any

ABOUT = ("<b>marketeq {version}</b><p>Continuous-time equilibria of markets with trading costs, computed by "
         "a "
         "reinforcement-link solver and compared with exact answers (oracles) where they exist.</p>"
         "<p>Edit a scenario on the left, press Run (Ctrl+R) and watch the curves form beside the oracle's "
         "dashed ones; export the result as HDF5 and compare runs in the Runs tab. The command line "
         "(<tt>marketeq run</tt>, <tt>marketeq gap</tt>) reads the same scenario files.</p>")


def build_menus(window: MainWindow) -> dict[str, QAction]:
    """Create the menus; returns the actions by name for enabling and tests."""
    keys = QKeySequence.StandardKey
    actions: dict[str, QAction] = {}

    def add(menu, name: str, text: str, slot, *shortcuts) -> QAction:  # noqa: ANN001
        action = menu.addAction(text, slot)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        actions[name] = action
        return action

    file_menu = window.menuBar().addMenu("&File")
    add(file_menu, "open_scenario", "Open scenario…", window.form.open_dialog, keys.Open)
    add(file_menu, "save_scenario", "Save scenario", window.form.save, keys.Save)
    add(file_menu, "save_scenario_as", "Save scenario as…", window.form.save_dialog, keys.SaveAs)
    file_menu.addSeparator()
    add(file_menu, "open_result", "Open result (.h5)…", window.results.open_dialog, "Ctrl+Shift+O")
    add(file_menu, "export", "Export result (.h5)…", window.results.export_dialog, "Ctrl+E")
    add(file_menu, "save_plots", "Save plots as PNG…", window.results.png_dialog, "Ctrl+Shift+P")
    file_menu.addSeparator()
    add(file_menu, "quit", "Quit", window.close, keys.Quit)

    run_menu = window.menuBar().addMenu("&Run")
    add(run_menu, "run", "Run", window.start_run, "Ctrl+R", "F5")
    add(run_menu, "pause", "Pause / Resume", window.toggle_pause, "Ctrl+P")
    add(run_menu, "stop", "Stop", window.stop_run, "Ctrl+.")
    run_menu.addSeparator()
    add(run_menu, "gap", "Equilibrium gap of the shown result", window.start_gap, "Ctrl+G")

    view = window.menuBar().addMenu("&View")
    group = QActionGroup(window)
    window.theme_actions = {}
    for name in THEMES:
        action = view.addAction(f"{name.capitalize()} theme", lambda n=name: window.set_theme(n))
        action.setCheckable(True)
        group.addAction(action)
        window.theme_actions[name] = action
    view.addSeparator()
    add(view, "log", "Message log", lambda: window.show_tab(window.log), "Ctrl+L")

    help_menu = window.menuBar().addMenu("&Help")
    add(help_menu, "shortcuts", "Keyboard shortcuts", lambda: show_shortcuts(window, actions), "F1")
    add(help_menu, "about", "About marketeq", lambda: QMessageBox.about(
        window, "About marketeq", ABOUT.format(version=marketeq.__version__)))
    return actions


def shortcut_lines(actions: dict[str, QAction]) -> list[str]:
    native = QKeySequence.SequenceFormat.NativeText
    return [f"{action.text().rstrip('…')}: {', '.join(k.toString(native) for k in action.shortcuts())}"
            for action in actions.values() if action.shortcuts()]


def show_shortcuts(window: MainWindow, actions: dict[str, QAction]) -> None:
    QMessageBox.information(window, "Keyboard shortcuts", "\n".join(shortcut_lines(actions)))
