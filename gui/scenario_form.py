"""The scenario editor: a form generated from the Scenario's fields, an agents table, open/save TOML.

Every edit is validated by ``marketeq.load_scenario`` itself (the form is written out as TOML text), so
the message shown beside a field is exactly the CLI's one-line ``ScenarioError`` message.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

import marketeq
from gui import dialogs
from gui.agents_table import AgentsTable
from gui.field_editors import FieldEditor, QuietComboBox, error_label

SECTIONS = ("market", "frictions", "solver", "run")
VALIDATE_DELAY_MS = 200


def scenario_dirs() -> list[Path]:
    """Where shipped scenarios live: the checkout's ``scenarios/`` and the working directory's."""
    dirs = [Path(__file__).resolve().parents[1] / "scenarios", Path.cwd() / "scenarios"]
    unique = dict.fromkeys(d.resolve() for d in dirs if d.is_dir())
    return list(unique)


def shipped_scenarios() -> list[Path]:
    found = {p.name: p for d in scenario_dirs() for p in d.glob("*.toml")}
    return [found[name] for name in sorted(found)]


def number_agents(message: str, names: list[str]) -> str:
    """The engine's ``agents[1].gamma`` as the table counts, from 1: ``agent 2 (balanced) gamma``."""
    def one(match: re.Match) -> str:
        i = int(match.group(1))
        name = f" ({names[i]})" if i < len(names) and names[i] else ""
        return f"agent {i + 1}{name}" + (" " if match.group(2) else "")

    return re.sub(r"agents\[(\d+)\](\.?)", one, message)


class ScenarioForm(QWidget):
    """Edits one scenario; :attr:`scenario` is the last valid one (``None`` while the form has an error)."""

    changed = Signal()  # after each validation
    validity_changed = Signal(bool)
    modified_changed = Signal(bool)
    notice = Signal(str)  # what a file action did, for the message log

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.scenario: marketeq.Scenario | None = None
        self.editors: dict[str, FieldEditor] = {}
        self.modified = False  # edited by the user since it was loaded or saved
        self._valid = False
        self._timer = QTimer(self, singleShot=True, interval=VALIDATE_DELAY_MS)
        self._timer.timeout.connect(self.validate)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 0, 0, 0)
        outer.addLayout(self._file_row())
        self.file_label = QLabel("no file")
        self.file_label.setWordWrap(True)
        self.general_error = error_label()
        self.lock_label = QLabel("Locked while a run is in progress: the form is the scenario being run.")
        self.lock_label.setWordWrap(True)
        self.lock_label.hide()
        outer.addWidget(self.file_label)
        outer.addWidget(self.lock_label)
        outer.addWidget(self.general_error)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.fields = self._build_fields()
        self.scroll.setWidget(self.fields)
        outer.addWidget(self.scroll)

    # --- construction --------------------------------------------------------------------------------
    def _file_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.shipped = QuietComboBox()
        self.shipped.addItem("Shipped scenarios…", None)
        for path in shipped_scenarios():
            self.shipped.addItem(path.stem, str(path.resolve()))
        self.shipped.activated.connect(self._open_shipped)
        self.open_button, save_button = QPushButton("Open…"), QPushButton("Save as…")
        self.open_button.clicked.connect(self.open_dialog)
        save_button.clicked.connect(self.save_dialog)
        row.addWidget(self.shipped, stretch=1)
        row.addWidget(self.open_button)
        row.addWidget(save_button)
        return row

    def _build_fields(self) -> QWidget:
        inner = QWidget()
        layout = QVBoxLayout(inner)
        fields = marketeq.Scenario.model_fields
        top = QFormLayout()
        for key in ("name", "description"):
            self._add_editor(top, key, fields[key])
        layout.addLayout(top)
        for section in SECTIONS:
            box = QGroupBox(section.capitalize())
            form = QFormLayout(box)
            for name, info in fields[section].annotation.model_fields.items():
                self._add_editor(form, f"{section}.{info.alias or name}", info)
            layout.addWidget(box)
            if section == "frictions":
                layout.addWidget(self._agents_box())
        layout.addStretch(1)
        return inner

    def _add_editor(self, form: QFormLayout, path: str, info: Any) -> None:
        editor = FieldEditor(path, info)
        editor.edited.connect(self._schedule)
        editor.user_edited.connect(lambda: self.set_modified(True))
        self.editors[path] = editor
        form.addRow(path.rsplit(".", 1)[-1].replace("_", " "), editor)

    def _agents_box(self) -> QGroupBox:
        box = QGroupBox("Agents")
        layout = QVBoxLayout(box)
        hint = QLabel("gamma: risk aversion (> 0); xi: endowment exposure (the xi must sum to 0); "
                      "lambda: own trading-cost scale (empty: frictions.lambda)")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.agents = AgentsTable()
        self.agents.edited.connect(self._schedule)
        self.agents.user_edited.connect(lambda: self.set_modified(True))
        layout.addWidget(self.agents)
        return box

    # --- values --------------------------------------------------------------------------------------
    def set_data(self, data: dict[str, Any]) -> None:
        """Fill the form from a scenario dictionary (TOML keys); missing optional fields get defaults."""
        for path, editor in self.editors.items():
            head, _, leaf = path.rpartition(".")
            source = data.get(head, {}) if head else data
            editor.set_value(source.get(leaf, editor.default) if isinstance(source, dict) else editor.default)
        self.agents.set_agents(data.get("agents", []))
        self.validate()

    def set_scenario(self, scenario: marketeq.Scenario, path: Path | None = None) -> None:
        self.path = path
        self.set_data(scenario.model_dump(by_alias=True, exclude_none=True))
        self._loaded(path)

    def _loaded(self, path: Path | None) -> None:
        """A file (or a result's scenario) now fills the form: not modified, the selector shows it."""
        self.shipped.setCurrentIndex(self._shipped_index(path))
        self.set_modified(False)

    def _shipped_index(self, path: Path | None) -> int:
        """The selector's entry for ``path`` (0, the prompt, when it is not a shipped scenario)."""
        if path is None:
            return 0
        return max(self.shipped.findData(str(Path(path).resolve())), 0)

    def set_modified(self, modified: bool) -> None:
        if modified != self.modified:
            self.modified = modified
            self.modified_changed.emit(modified)
        self._update_label()

    def _update_label(self) -> None:
        """Where the form came from and what state it is in; never a stale "(has errors)"."""
        if self.path is not None:
            text = str(self.path)
        else:
            name = self.editors["name"].value() if "name" in self.editors else None
            text = f"{name or 'scenario'} (not saved)"
        notes = [note for note, on in (("modified", self.modified), ("has errors", not self._valid)) if on]
        self.file_label.setText(text + (f" · {', '.join(notes)}" if notes else ""))

    def set_locked(self, locked: bool) -> None:
        """Lock the fields while a run is in progress, so the form always shows what is being run."""
        self.fields.setEnabled(not locked)
        self.shipped.setEnabled(not locked)
        self.open_button.setEnabled(not locked)
        self.lock_label.setVisible(locked)

    def may_discard(self) -> bool:
        """True when the form holds no edits, or the user agrees to lose them."""
        return not self.modified or dialogs.ask(
            self, "Discard edits?", "The scenario has edits that are not saved. Discard them?")

    def data(self) -> dict[str, Any]:
        """The form as a scenario dictionary, with TOML keys; unparseable text is passed on as text."""
        data: dict[str, Any] = {section: {} for section in SECTIONS}
        for path, editor in self.editors.items():
            head, _, leaf = path.rpartition(".")
            value = editor.value()
            if value is not None:
                (data[head] if head else data)[leaf] = value
        data["agents"] = self.agents.agents()
        return data

    def toml_text(self) -> str:
        return tomli_w.dumps(self.data())

    # --- validation ----------------------------------------------------------------------------------
    def _schedule(self) -> None:
        self._timer.start()

    def validate(self) -> marketeq.Scenario | None:
        """Validate the form now; show the engine's message beside the offending field."""
        self._timer.stop()
        for editor in self.editors.values():
            editor.set_error("")
        self.agents.set_error("", None)
        self.general_error.hide()
        try:
            self.scenario = marketeq.load_scenario("", text=self.toml_text())
        except marketeq.ScenarioError as exc:
            self.scenario = None
            self._show_error(exc)
        valid = self.scenario is not None
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)
        self._update_label()
        self.changed.emit()
        return self.scenario

    def _show_error(self, exc: marketeq.ScenarioError) -> None:
        names = [agent.get("name", "") for agent in self.agents.agents()]
        field, message = exc.field, number_agents(str(exc), names)
        if field.startswith("agents"):
            self.agents.set_error(message, field)
            return
        key = field
        while key not in self.editors and "[" in key:  # solver.agents_lr[1] -> solver.agents_lr
            key = key[: key.rindex("[")]
        if key in self.editors:
            self.editors[key].set_error(message)
        else:
            self.general_error.setText(message)
            self.general_error.show()

    def error_text(self, field: str) -> str:
        """The message shown for a field path (``agents`` for the table, ``""`` for the general line)."""
        if field.startswith("agents"):
            return self.agents.error.text() if not self.agents.error.isHidden() else ""
        editor = self.editors.get(field)
        if editor is None:
            return self.general_error.text() if not self.general_error.isHidden() else ""
        return editor.error.text() if not editor.error.isHidden() else ""

    # --- files ---------------------------------------------------------------------------------------
    def load_file(self, path: str | Path) -> bool:
        """Open a TOML scenario; an invalid one is still shown, with its errors beside the fields."""
        path = Path(path)
        try:
            scenario = marketeq.load_scenario(path)
        except marketeq.ScenarioError as exc:
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                self.general_error.setText(str(exc))
                self.general_error.show()
                return False
            self.path = path
            self.set_data(data)
            self._loaded(path)
            if self.scenario is not None:  # e.g. an unknown key the form cannot show
                self.general_error.setText(str(exc))
                self.general_error.show()
            return True
        self.set_scenario(scenario, path)
        return True

    def save_file(self, path: str | Path) -> bool:
        scenario = self.validate()
        if scenario is None:
            self.general_error.setText("cannot save: fix the error shown in the form first")
            self.general_error.show()
            return False
        path = Path(path)
        try:
            path.write_text(marketeq.scenario_to_toml(scenario), encoding="utf-8")
        except OSError as exc:
            why = dialogs.writable_folder_error(path) or exc.strerror or str(exc)
            self.general_error.setText(f"could not save {path}: {why}")
            self.general_error.show()
            return False
        self.path = path
        self.notice.emit(f"saved scenario {path}")
        self._loaded(path)
        return True

    def _open_shipped(self, index: int) -> None:
        path = self.shipped.itemData(index)
        if path and self.may_discard():
            self.load_file(path)
        else:  # kept the edits: the selector goes back to saying what the form holds
            self.shipped.setCurrentIndex(self._shipped_index(self.path))

    def _start_dir(self) -> str:
        fallback = self.path.parent if self.path else (scenario_dirs() or [Path.cwd()])[0]
        return dialogs.start_dir("scenario", fallback)

    def open_dialog(self) -> None:
        if not self.may_discard():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open scenario", self._start_dir(), "Scenario (*.toml)")
        if path:
            dialogs.remember_dir("scenario", path)
            self.load_file(path)

    def save_dialog(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save scenario", self._start_dir(), "Scenario (*.toml)")
        if not path:
            return False
        dialogs.remember_dir("scenario", path)
        return self.save_file(path if path.endswith(".toml") else path + ".toml")

    def save(self) -> bool:
        """Ctrl+S: write back to the file the form came from, unless that is a shipped scenario."""
        shipped = self.path is not None and self.path.resolve().parent in scenario_dirs()
        if self.path is None or shipped:
            return self.save_dialog()
        return self.save_file(self.path)


__all__ = ["ScenarioForm", "scenario_dirs", "shipped_scenarios"]
