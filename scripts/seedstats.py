"""Verdicts over seeds: mean ± sd, and when a difference is a finding rather than one seed's luck.

The rules (issue "results anyone can re-run"): a verdict against a published number holds only when it holds
on every seed; a difference within two standard errors (of the mean over seeds) is "not distinguishable"; a
target on the terminal error is never below the floor, the exact equilibrium's own terminal error on the same
grid (below it a learned market fits the Euler grid, not the equilibrium). Lower is better for every error
compared here. Plain Python and numpy: no torch, so the rules are tested in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation and standard error of the mean of per-seed values (nan when n < 2)."""

    n: int
    mean: float
    sd: float
    se: float

    def text(self) -> str:
        if self.n == 0:
            return "—"
        return f"{self.mean:.4g}" if self.n < 2 else f"{self.mean:.4g} ± {self.sd:.2g}"


def spread(values: Sequence[float]) -> Spread:
    """The spread of the finite ``values`` (one per seed)."""
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    n = len(data)
    if n == 0:
        return Spread(0, math.nan, math.nan, math.nan)
    sd = float(data.std(ddof=1)) if n > 1 else math.nan
    return Spread(n, float(data.mean()), sd, sd / math.sqrt(n) if n > 1 else math.nan)


@dataclass(frozen=True)
class Target:
    """What an error is held to: one value or one per seed, its name, whether it is the floor."""

    value: float | list[float]
    label: str
    floor: bool = False


def target_with_floor(published: float, floors: Sequence[float] | None) -> Target:
    """The terminal target: the published value, or the per-seed floor where the published one is below it."""
    if not floors or published >= max(floors):
        return Target(published, f"published {published:.3g}")
    return Target(
        list(floors),
        f"the floor {spread(floors).text()} (the exact equilibrium's own terminal error "
        f"on this grid; published {published:.3g} lies below it and is not a target)",
        True,
    )


def versus_target(values: Sequence[float], target: Target) -> str:
    """Per-seed ``values`` against ``target`` (one number, or one per seed): the verdict in words."""
    label, at_floor = target.label, target.floor
    target = target.value
    targets = [float(target)] * len(values) if isinstance(target, int | float) else [float(t) for t in target]
    pairs = [(v, t) for v, t in zip(values, targets, strict=True) if math.isfinite(v)]
    if not pairs:
        return f"no finished seed to compare with {label}"
    below = sum(v < t for v, t in pairs)
    diffs = spread([v - t for v, t in pairs])
    n = len(pairs)
    if n < 2:
        word = ("at or below" if at_floor else "better than") if below else "worse than"
        return f"{word} {label} on the one seed run (one seed: no verdict over seeds)"
    if abs(diffs.mean) <= 2 * diffs.se:
        return f"not distinguishable from {label} (difference within two standard errors)"
    if below == n:
        return f"{'at or below' if at_floor else 'better than'} {label} on every seed"
    if below == 0:
        return f"worse than {label} on every seed"
    return f"no verdict against {label}: better on {below} of {n} seeds"


def versus_method(
    ours: Sequence[float],
    theirs: Sequence[float],
    name: str = "rlink",
    other: str = "baseline",
    ours_se: Sequence[float] | None = None,
    theirs_se: Sequence[float] | None = None,
) -> str:
    """Two methods' errors on the same seeds (absolute, paired by seed): which is smaller, if either."""
    pairs = [
        (abs(a), abs(b)) for a, b in zip(ours, theirs, strict=True) if math.isfinite(a) and math.isfinite(b)
    ]
    if not pairs:
        return "no seed where both finished"
    if (
        ours_se is not None
        and theirs_se is not None
        and all(
            a <= 2 * sa and b <= 2 * sb for (a, b), sa, sb in zip(pairs, ours_se, theirs_se, strict=False)
        )
    ):
        return "both within two standard errors of 0 on every seed"
    n = len(pairs)
    smaller = sum(a < b for a, b in pairs)
    diffs = spread([a - b for a, b in pairs])
    if n >= 2 and abs(diffs.mean) <= 2 * diffs.se:
        return "not distinguishable (paired difference within two standard errors)"
    tail = " on every seed" if n >= 2 else " on the one seed run (no verdict over seeds)"
    if smaller == n:
        return f"{name} better{tail}"
    if smaller == 0:
        return f"{name} NOT better{tail}"
    return f"no verdict: {name} better on {smaller} of {n} seeds"
