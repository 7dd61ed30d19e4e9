"""The testable-predictions figure of a sweep: sigma_0, the liquidity premium and the price discount
against a swept parameter, the solver's points over the oracle's curve where both exist.

Error bars are standard errors: across seeds when a point has two or more (the spread of independent
runs), otherwise the trial's own standard error over its test paths.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from marketeq.files import atomic_path
from marketeq.methods import current_name
from marketeq.results import mean_se
from marketeq.sweeps.spec import SweepError
from marketeq.sweeps.summary import read_summary

PANELS = (
    ("sigma0", r"volatility $\sigma_0$"),
    ("liquidity_premium", r"liquidity premium $E[\mu_0] - \bar\mu$"),
    ("price_discount", r"price discount $S_0 - S_0^{\mathrm{frictionless}}$"),
)
STYLE = {"oracle": {"linestyle": "-", "marker": ".", "markersize": 4, "linewidth": 1.6, "zorder": 2},
         "trained": {"linestyle": "none", "marker": "o", "markersize": 7, "markerfacecolor": "none",
                    "markeredgewidth": 1.8, "capsize": 4, "zorder": 3}}


def _number(values: np.ndarray) -> bool:
    return values.dtype.kind in "iuf"


def series(columns: dict[str, np.ndarray], x: str, metric: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    """{(method, label of the other parameters): (x values, means, standard errors, seeds per point)} over
    the completed trials, seeds pooled at each x."""
    others = [k for k in columns if k.startswith("param/") and k != f"param/{x}"]
    pooled: dict[tuple[str, str], dict[Any, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list))
    for i in np.flatnonzero(columns["status"] == "completed"):
        if metric not in columns or not np.isfinite(columns[metric][i]):
            continue
        label = ", ".join(f"{k.removeprefix('param/')} = {_shown(columns[k][i])}" for k in others)
        stderr = columns.get(f"{metric}_se", np.full(len(columns["trial"]), np.nan))[i]
        at = pooled[(str(columns["method"][i]), label)][columns[f"param/{x}"][i]]
        at.append((columns[metric][i], stderr))
    out = {}
    for key, points in pooled.items():
        xs = sorted(points)
        means, errors, counts = [], [], []
        for value in xs:
            ys = np.array([p[0] for p in points[value]])
            own = np.array([p[1] for p in points[value]])
            mean, spread = mean_se(ys)
            means.append(mean)
            counts.append(len(ys))
            spread = spread if len(ys) > 1 else own[0]
            errors.append(0.0 if not np.isfinite(spread) else spread)
        out[key] = (np.asarray(xs), np.asarray(means), np.asarray(errors), np.asarray(counts))
    return out


def _method_names(columns: dict[str, np.ndarray]) -> dict[str, str]:
    """Legend names: "oracle (riccati)", "rlink" from the summary's solver column."""
    out = {}
    for method, solver in zip(columns["method"], columns["solver"], strict=True):
        engine = current_name(str(solver).removeprefix("oracle:"))
        out.setdefault(str(method), f"{method} ({engine})" if engine and engine != method else str(method))
    return out


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def predictions_figure(directory: str | os.PathLike[str], output: str | os.PathLike[str],
                       x: str | None = None, title: str | None = None) -> Path:
    """Draw the figure from ``directory``'s summary into ``output`` (PNG, SVG or PDF, atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns, attrs = read_summary(directory)
    parameters = [str(p) for p in np.atleast_1d(attrs.get("parameters", []))]
    if not parameters:
        raise SweepError("parameters", [], "this sweep varies nothing, so there is nothing to plot against",
                         str(directory))
    if not (columns["status"] == "completed").any():
        raise SweepError("sweep directory", str(directory), "has no completed trial to plot yet; run or "
                                                            "resume it with 'marketeq sweep'")
    x = x or parameters[0]
    if x not in parameters:
        raise SweepError("x", x, f"not a parameter of this sweep; one of {', '.join(parameters)}",
                         str(directory))
    xs = columns[f"param/{x}"]
    numeric = _number(xs)
    positive = numeric and len(xs) and np.all(xs > 0)
    log_x = bool(positive and xs.max() / xs.min() >= 50)
    figure = Figure(figsize=(14, 4.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(PANELS))
    categories = {v: i for i, v in enumerate(dict.fromkeys(xs.tolist()))} if not numeric else None
    names = _method_names(columns)
    colors: dict[str, str] = {}
    for ax, (metric, label) in zip(axes, PANELS, strict=True):
        lines = sorted(series(columns, x, metric).items())
        by_method = len({key[1] for key, _ in lines}) == 1  # one curve per method: colour the methods
        for (method, others), (px, mean, err, _) in lines:
            step = 3 if by_method else 1  # C0 blue, C3 red: the two methods apart at a glance
            color = colors.setdefault(method if by_method else others, f"C{len(colors) * step}")
            where = px if numeric else np.array([categories[v] for v in px])
            name = names.get(method, method) + (f", {others}" if others else "")
            if method == "oracle":
                ax.plot(where, mean, color=color, label=name, **STYLE["oracle"])
                if np.any(err > 0):
                    ax.fill_between(where, mean - err, mean + err, color=color, alpha=0.2, linewidth=0)
            else:
                ax.errorbar(where, mean, yerr=err, color=color, label=name, **STYLE["trained"])
        ax.set_title(label)
        ax.set_xlabel(x)
        ax.grid(True, alpha=0.3)
        if log_x:
            ax.set_xscale("log")
        if categories is not None:
            ax.set_xticks(list(categories.values()), [str(c) for c in categories])
        if metric != "sigma0":
            ax.axhline(0.0, color="0.5", linewidth=0.8, zorder=1)
    axes[0].legend(loc="best", fontsize="small")
    name = title or str(attrs.get("sweep", ""))
    if name:
        figure.suptitle(name)
    return _save(figure, Path(output))


def _save(figure: Any, path: Path) -> Path:
    kind = path.suffix.lstrip(".").lower()
    supported = figure.canvas.get_supported_filetypes()
    if kind not in supported:
        raise SweepError("output", str(path), f"unknown figure type; end the name in one of "
                                              f"{', '.join('.' + k for k in sorted(supported))}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=150, format=kind)
    except OSError as exc:
        raise SweepError("output", str(path), f"cannot be written ({exc.strerror or exc})") from None
    return path
