"""Dark and light themes: one set of colours for the Qt widgets and the pyqtgraph plots."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    text: str
    muted: str
    highlight: str
    plot_background: str
    plot_foreground: str
    error: str
    learned: str  # the solver's curves
    oracle: str  # the oracle's curves (dashed)
    series: tuple[str, ...]  # agents and loss curves; readable on both backgrounds


_SERIES_DARK = ("#4e9fe5", "#f28e2b", "#59c26b", "#e15759", "#c08bd0", "#e8c547", "#76d0c8", "#ff9da7",
                "#c49a6c", "#bab0ac")
_SERIES_LIGHT = ("#1f63b4", "#e0710f", "#2f8f3e", "#c8332f", "#8a4fa6", "#a8860b", "#2e9b93", "#d35b8a",
                 "#8c6239", "#6b6b6b")

THEMES: dict[str, Theme] = {
    "dark": Theme("dark", window="#202225", base="#16181a", text="#e2e2e2", muted="#9a9da1",
                  highlight="#3d7bd9", plot_background="#121416", plot_foreground="#c9ccd0", error="#ff6b6b",
                  learned="#4e9fe5", oracle="#f2a33a", series=_SERIES_DARK),
    "light": Theme("light", window="#f3f3f3", base="#ffffff", text="#1d1d1d", muted="#5f6368",
                   highlight="#2f6fd0", plot_background="#ffffff", plot_foreground="#2b2b2b", error="#c62828",
                   learned="#1f63b4", oracle="#d9480f", series=_SERIES_LIGHT),
}


def palette(theme: Theme) -> QPalette:
    """A Fusion palette for the theme (disabled widgets greyed out)."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: theme.window, QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Base: theme.base, QPalette.ColorRole.AlternateBase: theme.window,
        QPalette.ColorRole.Text: theme.text, QPalette.ColorRole.Button: theme.window,
        QPalette.ColorRole.ButtonText: theme.text, QPalette.ColorRole.ToolTipBase: theme.base,
        QPalette.ColorRole.ToolTipText: theme.text, QPalette.ColorRole.Highlight: theme.highlight,
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.PlaceholderText: theme.muted,
        QPalette.ColorRole.Link: theme.highlight,
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.muted))
    return p
