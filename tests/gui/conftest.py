"""Fixtures for the desktop app's tests (pytest-qt, QT_QPA_PLATFORM=offscreen)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

import marketeq  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"

# The quickstart market with a schedule of seconds: real marketeq.solve, real oracle, small batches.
FAST = {"solver.schedule": "rounds", "solver.mu_mode": "learned", "solver.rounds": 1, "solver.agents_iterations": [20], "solver.market_iterations": [20],
        "solver.batch_size": 128, "solver.market_batch_size": 256, "solver.eval_every": 10,
        "run.test_paths": 200, "run.device": "cpu"}


@pytest.fixture(scope="session", autouse=True)
def private_settings(tmp_path_factory):
    """Window size, theme and folders are remembered in a scratch place, never in the user's settings."""
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path_factory.mktemp("settings")))


class Answers:
    """Stands in for the user at every question the app asks: records it and gives ``reply``."""

    def __init__(self) -> None:
        self.reply = True
        self.asked: list[str] = []

    def __call__(self, _parent, title: str, _text: str, yes: str = "") -> bool:  # noqa: ARG002
        self.asked.append(title)
        return self.reply


@pytest.fixture(autouse=True)
def answers(monkeypatch) -> Answers:
    """No modal dialog ever blocks a test; a test sets ``answers.reply`` to say no."""
    from gui import dialogs

    stub = Answers()
    monkeypatch.setattr(dialogs, "ask", stub)
    return stub


@pytest.fixture(scope="session")
def quickstart_path() -> Path:
    return QUICKSTART


@pytest.fixture(scope="session")
def quickstart_fast() -> marketeq.Scenario:
    return marketeq.load_scenario(QUICKSTART).replace(**FAST)


@pytest.fixture
def window(qtbot):
    from gui.app import build_window

    win = build_window(str(QUICKSTART), "dark")
    qtbot.addWidget(win)
    win.show()
    yield win
    if win.runner.running:
        win.runner.stop()
        win.runner.wait()


@pytest.fixture
def run_to_end(qtbot):
    def wait(win, timeout_ms: int = 120_000) -> None:
        """Wait until the worker thread has ended and its last queued signals are delivered."""
        qtbot.waitUntil(lambda: not win.runner.running, timeout=timeout_ms)
        qtbot.wait(50)

    return wait


@pytest.fixture
def panel(qtbot):
    """The plots panel alone, shown at a typical size."""
    from gui.plots import PlotsPanel
    from gui.theme import THEMES

    widget = PlotsPanel(THEMES["dark"])
    qtbot.addWidget(widget)
    widget.resize(1100, 800)
    widget.show()
    return widget
