"""Questions to the user and remembered folders, in one place so that tests can answer for the user."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox, QWidget


def ask(parent: QWidget | None, title: str, text: str, yes: str = "Discard") -> bool:
    """A yes/no question; the safe answer (No) is the default."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    accept = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.exec()
    return box.clickedButton() is accept


def settings() -> QSettings:
    """The app's remembered settings: an INI file in the user's configuration folder (tests move it)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "marketeq", "marketeq")


def start_dir(kind: str, fallback: Path) -> str:
    """The folder the last ``kind`` dialog (scenario, result, plots) ended in, or ``fallback``."""
    remembered = settings().value(f"dirs/{kind}", "", str)
    if remembered and Path(remembered).is_dir():
        return remembered
    return str(fallback if fallback.is_dir() else Path.home())


def remember_dir(kind: str, path: str | Path) -> None:
    settings().setValue(f"dirs/{kind}", str(Path(path).parent))


def results_dir() -> Path:
    """Where results go: ``results/`` of the working directory when it exists, else the working directory."""
    here = Path.cwd() / "results"
    return here if here.is_dir() else Path.cwd()


def writable_folder_error(path: str | Path) -> str:
    """Why a file cannot be written at ``path`` ("" when its folder exists and is writable)."""
    folder = Path(path).parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    return ""
