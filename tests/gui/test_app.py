"""Starting the app: main(argv), python -m gui, themes, the initial scenario."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtWidgets import QApplication

from gui.app import build_window
from gui.theme import THEMES


def run_python(code: str, config: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, with its settings in ``config``, not the user's."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": config}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)


def test_main_opens_the_window_and_returns_the_exit_code(quickstart_path, tmp_path):
    """In a fresh process: ``main`` runs the real event loop, which a test's QApplication must not."""
    done = run_python(f"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from gui.app import application, main

def check_and_quit():
    (window,) = [w for w in QApplication.topLevelWidgets() if w.inherits("QMainWindow") and w.isVisible()]
    print("scenario", window.form.scenario.name, "theme", window.plots.theme.name)
    QApplication.instance().exit(3)

application()
QTimer.singleShot(200, check_and_quit)
sys.exit(main([{str(quickstart_path)!r}, "--theme", "light"]))
""", str(tmp_path))
    assert done.returncode == 3, done.stderr[-2000:]
    assert "scenario quickstart theme light" in done.stdout


def test_python_m_gui_help():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-m", "gui", "--help"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0 and "scenario" in done.stdout


def test_a_missing_scenario_is_reported_in_the_form(qtbot, tmp_path):
    window = build_window(str(tmp_path / "missing.toml"))
    qtbot.addWidget(window)
    assert "no such scenario file" in window.form.general_error.text()


def test_theme_switch_repaints_plots_and_palette(qtbot, quickstart_path):
    window = build_window(str(quickstart_path), "dark")
    qtbot.addWidget(window)
    window.theme_actions["light"].trigger()
    assert window.theme_actions["light"].isChecked()
    assert window.plots.theme is THEMES["light"]
    assert QApplication.instance().palette().window().color().name() == THEMES["light"].window
    window.theme_actions["dark"].trigger()
    assert window.plots.plots["losses"].backgroundBrush().color().name() == THEMES["dark"].plot_background


def test_the_agent_picker_follows_the_scenario_before_any_run(qtbot, quickstart_path):
    window = build_window(str(quickstart_path))
    qtbot.addWidget(window)
    assert window.plots.agent_names == ("cautious", "balanced", "bold")
    window.form.agents.add_agent("newcomer", 1.0, 0.0)
    assert window.form.validate() is not None
    assert window.plots.agent_names[-1] == "newcomer"
