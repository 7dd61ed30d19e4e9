"""Render marketeq's main window after a run to a PNG (offscreen unless a display is set).

    python scripts/screenshot_gui.py                       # short quickstart run -> gui_quickstart.png
    python scripts/screenshot_gui.py --full -o full.png    # the quickstart's own schedule
    python scripts/screenshot_gui.py --theme light --set solver.rounds=2 --set run.seed=3
    python scripts/screenshot_gui.py --size 1280x720 --compare frictions.lambda=0.02   # two runs overlaid

The run goes through the app's own solver process, exactly as pressing Run does, inside the app's event loop;
a 10 ms timer measures how often that loop gets to run while the solver trains (printed at the end). Each
``--compare`` makes one more run with that change, with every earlier run overlaid on the plots (checked in
the run list): the timer is measured during the last run, the screenshot taken after it.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TICK_MS = 10
SHORT = {"solver.rounds": 2, "solver.agents_iterations": [150], "solver.market_iterations": [150],
         "solver.eval_every": 25, "run.test_paths": 1000}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "quickstart.toml"))
    parser.add_argument("-o", "--output", default="gui_quickstart.png")
    parser.add_argument("--theme", choices=["dark", "light"], default="dark")
    parser.add_argument("--full", action="store_true", help="keep the scenario's schedule (no shortening)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario field, e.g. solver.rounds=3 (repeatable)")
    parser.add_argument("--size", default="1860x1020", help="window size WIDTHxHEIGHT")
    parser.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE",
                        help="one more run with this change, earlier runs overlaid (repeatable)")
    parser.add_argument("--plots-png", help="also save the plots as File > Save plots does")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    return parser.parse_args(argv)


def parse_settings(items: list[str]) -> dict[str, object]:
    changes: dict[str, object] = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            changes[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            changes[key] = text
    return changes


def overrides(args: argparse.Namespace) -> dict[str, object]:
    return {**({} if args.full else SHORT), **parse_settings(args.set)}


def run_once(window, timeout_s: float, ticks: list[float] | None = None) -> float:  # noqa: ANN001
    """Press Run and wait in the app's event loop until the run has ended; returns its seconds."""
    from PySide6.QtCore import QEventLoop, QTimer

    timer = QTimer(interval=TICK_MS)  # how often the event loop gets to run while the solver trains
    if ticks is not None:
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QEventLoop()
    window.runner.stopped.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    started = time.perf_counter()
    timer.start()
    window.start_run()
    loop.exec()
    timer.stop()
    window.runner.stopped.disconnect(loop.quit)
    if window.runner.running:
        window.stop_run()
        window.runner.wait()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    import tempfile

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.app import build_window

    # the app remembers its size and theme: keep the user's out of the picture and the picture out of them
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())

    window = build_window(args.scenario, args.theme)
    if window.form.scenario is None:
        print(f"screenshot_gui: {window.form.general_error.text() or 'invalid scenario'}", file=sys.stderr)
        return 2
    base = window.form.scenario.replace(**overrides(args))
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    app = QApplication.instance()
    ticks: list[float] = []
    changes = [{}] + [parse_settings([item]) for item in args.compare]
    seconds = 0.0
    for n, change in enumerate(changes):
        window.form.set_scenario(base.replace(**change), window.form.path)
        for entry in window.runs.entries:  # every earlier run overlaid while this one trains
            window.runs.set_checked(entry.number)
        last = n == len(changes) - 1
        seconds = run_once(window, args.timeout, ticks if last else None)
    gaps = np.diff(ticks) * 1000 if len(ticks) > 1 else np.array([float("nan")])
    for _ in range(20):  # deliver the last queued signals, then draw everything
        app.processEvents()
        time.sleep(0.01)
    window.refresh()
    window.plots.refresh(window.model, force=True)
    app.processEvents()
    window.grab().save(args.output)
    if args.plots_png:
        window.results.save_plots(args.plots_png)
    model = window.model
    print(f"{model.scenario_name}: {model.status} after {seconds:.1f} s, step {model.step}/"
          f"{model.total_iterations}, oracle {model.oracle_name}; overlaid {window.plots.overlay_labels}; "
          f"wrote {args.output}")
    print(f"event loop during the last run ({len(window.plots.overlay_labels)} earlier runs overlaid, "
          f"{args.size}): {len(ticks)} ticks of a {TICK_MS} ms timer; gap between ticks: median "
          f"{np.median(gaps):.0f} ms, 99th percentile {np.percentile(gaps, 99):.0f} ms, "
          f"max {gaps.max():.0f} ms")
    window.close()
    return 0 if model.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
