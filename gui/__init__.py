"""marketeq's desktop app (PySide6 + pyqtgraph).

Importing ``gui`` has no side effects and loads no Qt: start the app with ``marketeq gui [SCENARIO]`` or
``python -m gui [SCENARIO]``, which call :func:`gui.app.main`. Only :mod:`gui.run_model` is Qt-free.
"""
