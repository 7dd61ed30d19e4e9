"""One-line descriptions of a scenario: its parameters (as ``marketeq validate`` prints them), the memory a
run needs (``marketeq.memory``) and how long it may take at the speed of the last run in this session."""

from __future__ import annotations

import math
from typing import Any

import marketeq
from gui.run_model import format_seconds
from marketeq.memory import estimate_memory
from marketeq.scenario.assets import refuse_unsolved_assets


def scenario_summary(scenario: marketeq.Scenario) -> str:
    """The parameters a reader compares runs by; the same as ``marketeq validate`` prints."""
    m, f, s = scenario.market, scenario.frictions, scenario.solver
    return (f"{scenario.n_agents} agents, q = {f.q}, lambda = {f.lam}, T = {m.horizon}, K = {m.steps}, "
            f"{s.method}, mu {s.mu_source}, {s.summary()}, "
            f"seed {scenario.run.seed}")


def run_refusal(scenario: marketeq.Scenario) -> str | None:
    """Why the engine would refuse to run ``scenario`` (its one line), or None when it runs: Run offers only
    what runs (several assets with power costs do not)."""
    try:
        refuse_unsolved_assets(scenario)  # what marketeq.api.runnable refuses, without loading the engine
    except marketeq.ScenarioError as exc:
        return str(exc)
    return None


def estimate_text(scenario: marketeq.Scenario, seconds_per_iteration: float | None = None) -> str:
    """What a run of ``scenario`` will cost: iterations, peak memory and, when known, time."""
    refusal = run_refusal(scenario)
    if refusal is not None:
        return f"cannot run: {refusal}"
    if scenario.n_assets > 1:  # exact grid equilibria: no iterations, no networks
        return (f"{scenario.n_assets} assets, quadratic costs: exact equilibria on refined time grids, "
                "seconds (with the oracle's comparison)")
    need = estimate_memory(scenario).peak
    if scenario.solver.adaptive:  # it stops on its own: no iteration count to multiply
        return f"{scenario.solver.summary()}, about {need / 2**30:.2g} GiB of memory"
    text = f"{scenario.solver.total_iterations} iterations, about {need / 2**30:.2g} GiB of memory"
    if seconds_per_iteration is not None and math.isfinite(seconds_per_iteration):
        total = seconds_per_iteration * scenario.solver.total_iterations
        text += f", about {format_seconds(total)} (last run's speed)"
    return text


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"frictions": {"lambda": 0.01}}`` -> ``{"frictions.lambda": 0.01}``; lists of tables by index."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{path}[{i + 1}]."))
        else:
            out[path] = value
    return out


def differing(scenario: marketeq.Scenario, reference: marketeq.Scenario, limit: int = 3) -> list[str]:
    """``key=value`` of ``scenario`` where it differs from ``reference`` (name and description aside)."""
    ours = flatten(scenario.model_dump(by_alias=True))
    theirs = flatten(reference.model_dump(by_alias=True))
    keys = [k for k in dict.fromkeys([*ours, *theirs])
            if k not in ("name", "description") and ours.get(k) != theirs.get(k)]
    shown = [f"{k if '[' in k else k.rsplit('.', 1)[-1]}={_short(ours.get(k))}" for k in keys[:limit]]
    return shown + ([f"+{len(keys) - limit} more"] if len(keys) > limit else [])


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_short(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
