"""When a trained agents' phase of the adaptive schedule may end: solved as far as the outer iteration needs.

The round map's output, the volatility, moves with the agents' policy to first order, while their objective
moves with it to second order (it is at an optimum). So a phase whose objective is within ``e`` of the optimum
leaves an error of order ``sqrt(e)`` in the volatility, and while the volatility is still ``r`` away from the
last round's (the residual), solving the agents' problem further than ``r^2`` changes nothing the next round
keeps. The phase ends when an iteration improves the objective by less than ``FORCING r^2`` of it (an inexact
Newton forcing term), never less than the schedule's floor; as the rounds converge, so does each phase.

Why: on E3 the first round from the frictionless start trained 40 iterations of 25 evaluations (the cap),
still improving by 2e-4 per iteration, against a volatility that then moved by several per cent.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketeq.solvers.fixed_point import RoundCheck

FORCING = 0.1
FIRST_RESIDUAL = 0.05  # before a grid's first round: a first round's typical volatility change


def agents_tolerance(checks: Sequence[RoundCheck], floor: float) -> float:
    """The relative improvement per agents' iteration below which the phase ends, given the rounds so far."""
    residual = checks[-1].sigma_change if checks else FIRST_RESIDUAL
    return max(floor, FORCING * residual * residual)
