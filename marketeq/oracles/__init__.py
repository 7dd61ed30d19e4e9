"""Exact and asymptotic answers to test the solvers against (model.md section 3).

Every oracle returns :class:`~marketeq.model.rollout.Paths` on given Brownian increments, the same
structure a solver produces, so metrics compare both on identical paths.
"""

from __future__ import annotations

from marketeq.model.market import MarketModel
from marketeq.oracles.base import Oracle
from marketeq.oracles.frictionless import FrictionlessOracle
from marketeq.oracles.leading_order import LeadingOrderOracle
from marketeq.oracles.riccati import RiccatiOracle
from marketeq.oracles.tanh import TwoAgentTanhOracle

ORACLES: dict[str, type[Oracle]] = {
    "frictionless": FrictionlessOracle,
    "leading-order": LeadingOrderOracle,
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


def reference_for(model: MarketModel) -> Oracle | None:
    """A curve to overlay: the exact oracle when there is one, else the leading-order approximation for two
    agents with power costs (q < 2), else None. Check ``exact`` before treating it as the answer."""
    exact = oracle_for(model)
    if exact is not None:
        return exact
    if (model.n_agents == 2 and model.cost.q < 2.0 and float(model.xi[0]) != 0
            and model.cost.common_lam is not None):
        return LeadingOrderOracle(model)
    return None


__all__ = ["ORACLES", "FrictionlessOracle", "LeadingOrderOracle", "Oracle", "RiccatiOracle",
           "TwoAgentTanhOracle", "oracle_for", "reference_for"]
