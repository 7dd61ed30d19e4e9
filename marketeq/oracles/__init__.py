"""Exact and asymptotic answers to test the solvers against (model.md section 3).

Every oracle returns :class:`~marketeq.model.rollout.Paths` on given Brownian increments, the same
structure a solver produces, so metrics compare both on identical paths.
"""

from __future__ import annotations

from marketeq.model.market import MarketModel
from marketeq.oracles.base import Oracle
from marketeq.oracles.frictionless import FrictionlessOracle
from marketeq.oracles.riccati import RiccatiOracle
from marketeq.oracles.tanh import TwoAgentTanhOracle

ORACLES: dict[str, type[Oracle]] = {
    "frictionless": FrictionlessOracle,
    "riccati": RiccatiOracle,
    "tanh": TwoAgentTanhOracle,
}


def oracle_for(model: MarketModel) -> Oracle | None:
    """The equilibrium oracle of a market when one exists: frictionless (lambda = 0) or Riccati (q = 2)."""
    if model.cost.frictionless:
        return FrictionlessOracle(model)
    if model.cost.q == 2.0:
        return RiccatiOracle(model)
    return None


__all__ = ["ORACLES", "FrictionlessOracle", "Oracle", "RiccatiOracle", "TwoAgentTanhOracle", "oracle_for"]
