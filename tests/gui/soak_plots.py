"""Soak the live plots: thousands of model updates and redraws in a fresh interpreter.

PySide6 6.12.0 aborted Python 3.11 with ``Fatal Python error: none_dealloc`` after a few thousand Qt calls
(a reference to None dropped on each call until None itself was freed). Run as a script by
``test_soak.py`` so such a crash fails one test with a clear message instead of killing the test session;
the None reference count is checked too, which catches the leak before it crashes.

    python tests/gui/soak_plots.py [UPDATES]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

K, N = 50, 3
PAINT_EVERY = 25  # let Qt paint every so often, as the 10 Hz timer would


def soak(updates: int) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    import marketeq
    from gui.plots import PlotsPanel
    from gui.run_model import RunModel

    app = QApplication.instance() or QApplication([])
    panel = PlotsPanel()
    panel.resize(1000, 700)
    panel.show()
    model = RunModel()
    model.apply(marketeq.RunStarted("soak", "rlink", 1, updates, N, ("a", "b", "c")))
    model.apply(marketeq.PhaseStarted(0, "agents", updates))
    t = np.linspace(0, 0.2, K + 1)
    rng = np.random.default_rng(0)
    app.processEvents()
    none_before, started, drawn = sys.getrefcount(None), time.perf_counter(), 0
    for step in range(1, updates + 1):
        loss = np.nan if step % 97 == 0 else float(rng.lognormal())
        model.apply(marketeq.IterationEnded(0, "agents", step - 1, step,
                                            {"agents/loss": loss, "market/link": -loss}, 0.01 * step))
        if step % 10 == 0:
            walk = np.cumsum(rng.normal(size=(K + 1, N)), axis=0)
            sigma = 1 + 0.1 * rng.random(K + 1)
            model.apply(marketeq.Snapshot(step, t, sigma, 0.5 + t, 0.5 + walk[:, 0], walk[:, 1], walk,
                                          np.diff(walk, axis=0, prepend=0.0),
                                          {"eval/clearing": 1e-3 / step, "eval/terminal": float("nan")}))
        drawn += panel.refresh(model)
        if step % PAINT_EVERY == 0:
            app.processEvents()
    app.processEvents()
    return {"updates": updates, "refreshes": drawn, "seconds": time.perf_counter() - started,
            "none_refcount_change": sys.getrefcount(None) - none_before}


if __name__ == "__main__":
    report = soak(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
    print(" ".join(f"{key}={value:.6g}" for key, value in report.items()))
