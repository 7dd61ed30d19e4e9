"""One editor per scenario field, chosen from the field's type, with its error message beneath it.

Numbers are typed as text rather than spin boxes so that any value can be entered and the engine, not
the widget, decides what is allowed (and says so with the CLI's message).
"""

from __future__ import annotations

import json
import typing
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QVBoxLayout, QWidget

CUDA_HINT = "no CUDA device is available here: a run with device = 'cuda' will fail; use cpu or auto"


def error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setObjectName("fieldError")
    label.setStyleSheet("QLabel#fieldError { color: #e5484d; }")
    label.hide()
    return label


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (torch is already loaded by marketeq)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch, no CUDA
        return False


def parse_scalar(text: str) -> Any:
    """``"3"`` -> 3, ``"1e-2"`` -> 0.01, ``"true"`` -> True, ``"[[1, 0], [0, 1]]"`` -> a matrix (several
    assets); other text stays text for the engine to judge."""
    text = text.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_list(text: str) -> list[Any]:
    """``"300, 1000"`` or ``"[300, 1000]"`` -> [300, 1000]."""
    text = text.strip().removeprefix("[").removesuffix("]")
    return [parse_scalar(part) for part in text.split(",") if part.strip()]


def show_value(value: Any, bracketed: bool = False) -> str:
    """Text for a value: a list as ``a, b`` (``[a, b]`` when ``bracketed``: a number field holding several
    assets' list), a matrix always as ``[[a, b], [c, d]]``."""
    if isinstance(value, list | tuple) and (bracketed or any(isinstance(v, list | tuple) for v in value)):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return ", ".join(show_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


class QuietComboBox(QComboBox):
    """A combo box that ignores the mouse wheel unless it has focus, so the wheel scrolls the form instead
    of silently changing a setting under the pointer (a click gives it focus)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # passed on to the parent: the scroll area scrolls


def type_name(annotation: Any) -> str:
    """A reader's name for a field's type: ``list of int``, ``one of: rlink, joint``, ``float``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return f"list of {type_name(item)}"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args:  # a union such as float | None
        return " or ".join(type_name(a) for a in args)
    return getattr(annotation, "__name__", str(annotation))


def field_tooltip(name: str, info: Any) -> str:
    """The schema's description of a field; its name and type when it has none."""
    return info.description or f"{name} ({type_name(info.annotation)})"


class FieldEditor(QWidget):
    """A line edit, a combo box (Literal fields) or a check box (bool fields), plus an error label."""

    edited = Signal()  # any change of the value, typed or set
    user_edited = Signal()  # a change made by the user (typing, clicking, choosing)

    def __init__(self, path: str, info: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        annotation = info.annotation
        origin = typing.get_origin(annotation)
        self.kind = ("choice" if origin is typing.Literal else "bool" if annotation is bool
                     else "list" if origin is list else "text" if str in _types(annotation) else "number")
        self.default = None if info.is_required() else info.get_default(call_default_factory=True)
        self.widget = self._make_widget(annotation)
        self.tooltip = field_tooltip(path.rsplit(".", 1)[-1], info)
        self.widget.setToolTip(self.tooltip)
        self.error = error_label()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addWidget(self.widget)
        layout.addWidget(self.error)

    def _make_widget(self, annotation: Any) -> QWidget:
        if self.kind == "choice":
            combo = QuietComboBox()
            for choice in typing.get_args(annotation):
                combo.addItem(str(choice), choice)
            if self.path == "run.device" and not cuda_available():
                item = combo.model().item(combo.findData("cuda"))
                item.setEnabled(False)  # greyed out, and says why
                item.setToolTip(CUDA_HINT)
            combo.currentIndexChanged.connect(lambda _i: self._changed())
            combo.activated.connect(lambda _i: self.user_edited.emit())
            return combo
        if self.kind == "bool":
            box = QCheckBox()
            box.clicked.connect(lambda _on: self.user_edited.emit())
            box.toggled.connect(lambda _on: self._changed())
            return box
        line = QLineEdit()
        line.textChanged.connect(lambda _text: self._changed())
        line.textEdited.connect(lambda _text: self.user_edited.emit())
        return line

    def _changed(self) -> None:
        self.set_error(self.error.text() if self.error.text() != CUDA_HINT else "")
        self.edited.emit()

    def _hint(self) -> str:
        """A warning that outlives validation: cuda chosen on a machine without it."""
        cuda = self.path == "run.device" and self.value() == "cuda" and not cuda_available()
        return CUDA_HINT if cuda else ""

    def set_value(self, value: Any) -> None:
        widget = self.widget
        if isinstance(widget, QComboBox):
            index = widget.findData(value)
            if index < 0:  # a value the field does not allow: show it so the engine can reject it
                widget.addItem(str(value), value)
                index = widget.count() - 1
            widget.setCurrentIndex(index)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        else:
            widget.setText(show_value(value, bracketed=self.kind == "number"))

    def value(self) -> Any:
        """The typed value for the scenario dictionary (``None``: leave the key out)."""
        widget = self.widget
        if isinstance(widget, QComboBox):
            return widget.currentData()
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        text = widget.text()
        if self.kind == "text":
            return text if text or self.default is not None else None
        if self.kind == "list":
            return parse_list(text)
        return parse_scalar(text)  # "" too: the engine says what it expected

    def set_text(self, text: str) -> None:
        """Type into a text field (what a user does; used by tests too)."""
        self.widget.setText(text)

    def set_error(self, message: str) -> None:
        message = message or self._hint()
        self.error.setText(message)
        self.error.setVisible(bool(message))


def _types(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) or (annotation,)
