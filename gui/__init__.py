"""marketeq's desktop app (PySide6 + pyqtgraph).

Importing ``gui`` has no side effects and loads no Qt: start the app with ``marketeq gui [SCENARIO]`` or
``python -m gui [SCENARIO]``, which call :func:`gui.app.main`. :mod:`gui.run_model` and
:mod:`gui.solver_process` (what runs in the solver's process) are Qt-free.
"""
