"""Several methods on one scenario and one seeded test set: the comparison table and its plots.

``compare(scenario, ["rlink", "joint", ...])`` runs each method through :func:`marketeq.api.solve` (so every
method sees the same training noise stream and is evaluated on the same test paths), attaches the reference
answer, and never lets one method's failure take the others down.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marketeq.api import oracle_result, solve
from marketeq.callbacks import HistoryRecorder
from marketeq.gap import DEFAULT_ITERATIONS, result_gap
from marketeq.methods import current_name
from marketeq.oracles import oracle_names
from marketeq.results import Metric, RunResult
from marketeq.runtime import Runtime, provenance
from marketeq.scenario import Scenario, ScenarioError, scenario_to_toml
from marketeq.solvers.events import Callback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    """A named way of solving a scenario: a solver with scenario overrides, or the reference answer."""

    name: str
    label: str
    overrides: dict[str, object] | None  # None: an oracle
    oracle: str = "auto"  # which oracle, when overrides is None


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("rlink", "reinforcement link, the scenario's settings (by default the adaptive schedule)",
           {"solver.method": "rlink"}),
    Method("rlink-learned", "reinforcement link, rounds schedule with a learned mu",
           {"solver.method": "rlink", "solver.mu_mode": "learned"}),
    Method("rlink-known", "reinforcement link, mu known",
           {"solver.method": "rlink", "solver.mu_mode": "known"}),
    Method("rlink-implied", "reinforcement link, mu implied (link solved exactly)",
           {"solver.method": "rlink", "solver.mu_mode": "implied"}),
    Method("joint", "joint training", {"solver.method": "joint"}),
    Method("fbsde", "deep FBSDE", {"solver.method": "fbsde"}),
    Method("oracle", "oracle (the reference: exact, or the PDE for two agents with q < 2)", None),
    Method("leading-order", "leading-order approximation (two agents, one lambda)", None, "leading-order"),
)}
DEFAULT_METHODS = ("rlink", "rlink-learned", "joint", "fbsde", "oracle")
# Table columns: (metric key, heading).
COLUMNS = (("sum_J", "sum J_n"), ("clearing", "clearing"), ("terminal", "terminal"), ("S0", "S_0"),
           ("mu0", "mu_0"), ("sigma0", "sigma_0"), ("gap/total", "gap"),
           ("oracle/sigma_sup_rel_error", "sigma err"), ("oracle/mu0_rel_error", "mu_0 err"))


def parse_methods(text: str | Iterable[str]) -> list[str]:
    """Method names from ``"rlink,joint"`` or a list (earlier names mapped); unknown names are a one-line
    error."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    given = [n for n in names if n]
    names = [current_name(n) for n in given]
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise ScenarioError("--methods", ",".join(given), f"choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def _failed(scenario: Scenario, method: str, message: str, wall: float) -> RunResult:
    """A result that records why a method could not run, so the comparison still completes."""
    runtime = Runtime.from_settings("cpu", scenario.run.dtype, scenario.run.seed)
    return RunResult(scenario=scenario, scenario_toml=scenario_to_toml(scenario), solver=method,
                     status="failed", provenance=provenance(runtime), history=HistoryRecorder().columns(),
                     paths=None, metrics={}, message=message, wall_time_s=wall)


def run_method(scenario: Scenario, method: str, callbacks: Sequence[Callback] = (), *,
               device: str | None = None, seed: int | None = None) -> RunResult | None:
    """One method's result; None when the method does not apply (no oracle, mu known impossible)."""
    spec = METHODS[method]
    started = time.perf_counter()
    if spec.overrides is None:
        seeded = scenario if seed is None else scenario.replace(**{"run.seed": seed})
        if spec.oracle != "auto" and spec.oracle not in oracle_names(seeded):
            return None
        return oracle_result(seeded, spec.oracle)
    try:
        variant = scenario.with_method(**spec.overrides)
    except ScenarioError as exc:
        log.info("%s does not apply: %s", method, exc)
        return None
    try:
        return solve(variant, callbacks, device=device, seed=seed)
    except Exception as exc:  # noqa: BLE001 - one method's crash must not end the comparison
        log.warning("%s failed: %s", method, traceback.format_exc())
        return _failed(variant, method, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)


def compare(scenario: Scenario, methods: Sequence[str] = DEFAULT_METHODS,
            callbacks_for: Callable[[str], Sequence[Callback]] = lambda name: (), *,
            device: str | None = None, seed: int | None = None,
            gap_iterations: int = DEFAULT_ITERATIONS) -> dict[str, RunResult]:
    """Run ``methods`` on ``scenario`` and measure each one's equilibrium gap (``gap_iterations`` = 0: no
    gap); methods that do not apply are left out."""
    results: dict[str, RunResult] = {}
    for name in parse_methods(methods):
        result = run_method(scenario, name, callbacks_for(name), device=device, seed=seed)
        if result is not None:
            if gap_iterations > 0:
                add_gap(result, gap_iterations)
            results[name] = result
    return results


def _is_answer(result: RunResult) -> bool:
    """Whether a result's market and policy are an answer to compare (not a diverged or failed method's)."""
    return result.status not in ("diverged", "failed")


def add_gap(result: RunResult, iterations: int) -> None:
    """Add ``gap/total`` (utility gained by best-responding, summed over agents) and ``gap/ratio`` (that over
    the agents' total gain over not trading) to a result's metrics, when it has a finite market to test.
    A diverged run gets none: its market is the last good state before the blow-up, not an answer."""
    if not _is_answer(result):
        return
    try:
        report = result_gap(result, iterations)
    except ValueError as exc:  # no finite paths: a failed or diverged run has no market to exploit
        log.info("no gap for %s: %s", result.solver, exc)
        return
    result.metrics["gap/total"] = Metric(report.total_gap, report.total_gap_se)
    result.metrics["gap/ratio"] = Metric(report.ratio)


def table_rows(results: dict[str, RunResult]) -> list[list[str]]:
    """One row per method: name, status, then the COLUMNS as ``value ± stderr``, then the wall time."""
    rows = []
    for name, result in results.items():
        cells = [name, result.status]
        for key, _ in COLUMNS:
            cells.append(_cell(result.metrics.get(key)))
        cells.append(f"{result.wall_time_s:.1f} s" if np.isfinite(result.wall_time_s) else "")
        rows.append(cells)
    return rows


def _cell(metric: Metric | None) -> str:
    if metric is None or not np.isfinite(metric.value):
        return "—"
    value, se = metric
    return f"{value:.4g}" if not np.isfinite(se) or se == 0 else f"{value:.4g} ± {se:.1g}"


def plot_comparison(results: dict[str, RunResult], stem: str | Path, path_index: int = 0) -> list[Path]:
    """PNG plots of sigma_t, mean mu_t, and phidot, phi along one test path, one line style per method.

    Writes ``<stem>_sigma.png``, ``<stem>_mu.png``, ``<stem>_phidot.png`` and ``<stem>_phi.png``. Diverged and
    failed methods are left out (their paths are no answer, and would set the scale); the table lists them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    drawn = {name: r for name, r in results.items() if r.paths is not None and _is_answer(r)}
    panels = {
        "sigma": ("volatility σ_t (mean over paths)", "σ_t", lambda p: p.sigma.mean(0)),
        "mu": ("expected return μ_t (mean over paths)", "E[μ_t]", lambda p: p.mu.mean(0)),
        "phidot": (f"trading rates along test path {path_index}", "dφ/dt", lambda p: p.phidot[path_index]),
        "phi": (f"holdings along test path {path_index}", "φ_t", lambda p: p.phi[path_index]),
    }
    written = []
    for key, (title, ylabel, pick) in panels.items():
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
        for i, (name, result) in enumerate(drawn.items()):
            p = result.paths
            values = np.asarray(pick(p))
            dashes = {"oracle": "--", "leading-order": ":"}
            style = {"color": f"C{i}", "linestyle": dashes.get(name, "-"), "linewidth": 1.4}
            if values.ndim == 1:
                label = result.solver.removeprefix("oracle:") if name in dashes else name
                ax.plot(p.t, values, label=label, **style)
            else:  # one line per agent, labelled once per method
                for n in range(values.shape[1]):
                    ax.plot(p.t, values[:, n], label=name if n == 0 else None, alpha=0.8, **style)
        ax.set_title(title)
        ax.set_xlabel("time t")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = stem.with_name(f"{stem.name}_{key}.png")
        fig.savefig(out)
        plt.close(fig)
        written.append(out)
    return written
