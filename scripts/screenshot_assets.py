"""Render marketeq's main window showing a several-asset result, another overlaid, to a PNG.

    python scripts/screenshot_assets.py                          # assets_3_quadratic -> docs/gui_assets.png
    python scripts/screenshot_assets.py --asset 2 --entry 2 1 --size 1280x720 -o small.png

No solver handles several assets yet, so the results are `marketeq oracle`'s: the scenario's exact
(matrix-Riccati) equilibrium is opened as File > Open result does, and the frictionless equilibrium of the same
scenario overlaid (checked in the run list). The asset selector picks the asset drawn and the entry of the
volatility matrix drawn thick. Offscreen unless a display is set (e.g. under xvfb-run).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "assets_3_quadratic.toml"))
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "gui_assets.png"))
    parser.add_argument("--theme", choices=["dark", "light"], default="dark")
    parser.add_argument("--size", default="1860x1020", help="window size WIDTHxHEIGHT")
    parser.add_argument("--paths", type=int, default=500, help="test paths of the oracle results")
    parser.add_argument("--asset", type=int, default=2, help="the asset drawn (1-based)")
    parser.add_argument("--entry", type=int, nargs=2, default=(1, 2), metavar=("ROW", "COLUMN"),
                        help="the volatility entry drawn thick (1-based)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    import marketeq
    from gui.app import build_window

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    scenario = marketeq.load_scenario(args.scenario).replace(**{"run.test_paths": args.paths})
    folder = Path(tempfile.mkdtemp())
    files = [marketeq.write_result(marketeq.oracle_result(scenario, method), folder / f"{method}.h5")
             for method in ("frictionless", "auto")]
    window = build_window(None, args.theme)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    for path in files:  # the frictionless one first: the exact one is shown, the other overlaid
        if window.results.open_file(path) is None:
            print(f"screenshot_assets: could not open {path}", file=sys.stderr)
            return 2
    window.runs.set_checked(1)
    window.plots.asset_selector.select(args.asset - 1, (args.entry[0] - 1, args.entry[1] - 1))
    app = QApplication.instance()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    window.refresh()
    window.plots.refresh(window.model, force=True)
    for _ in range(20):  # the clipped curves redraw once their views have taken the new ranges
        app.processEvents()
        time.sleep(0.01)
    window.grab().save(args.output)
    print(f"{scenario.name}: {window.model.scenario_name} shown, overlaid {window.plots.overlay_labels}, "
          f"asset {args.asset}, entry {tuple(args.entry)}; form valid: {window.form.scenario is not None}; "
          f"wrote {args.output}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
