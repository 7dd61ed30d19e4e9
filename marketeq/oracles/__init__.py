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
from marketeq.scenario import Scenario

ORACLES: dict[str, type[Oracle]] = {
    "frictionless": FrictionlessOracle,
    "leading-order": LeadingOrderOracle,
    "riccati": RiccatiOracle,
    "tanh": TwoAgentTanhOracle,
}


def _reference(frictionless: bool, q: float, n_agents: int, one_lambda: bool, xi_1: float) -> str | None:
    if frictionless:
        return "frictionless"
    if q == 2.0:
        return "riccati"
    if n_agents == 2 and one_lambda and xi_1 != 0:
        return "leading-order"
    return None


def reference_name(scenario: Scenario) -> str | None:
    """Which reference answer a scenario has, without building it (the Riccati oracle solves an ODE):
    "frictionless" (lambda = 0), "riccati" (q = 2), "leading-order" (two agents, q < 2, one lambda;
    approximate) or None."""
    lams = scenario.lams
    return _reference(max(lams) == 0, scenario.frictions.q, scenario.n_agents, len(set(lams)) == 1,
                      scenario.agents[0].xi)


def oracle_for(model: MarketModel) -> Oracle | None:
    """The exact equilibrium oracle of a market when one exists: frictionless (lambda = 0) or Riccati
    (q = 2)."""
    oracle = reference_for(model)
    return oracle if oracle is not None and oracle.exact else None


def reference_for(model: MarketModel) -> Oracle | None:
    """A curve to overlay: the exact oracle when there is one, else the leading-order approximation for two
    agents with power costs (q < 2), else None. Check ``exact`` before treating it as the answer."""
    cost = model.cost
    one_lambda = cost.common_lam is not None
    name = _reference(cost.frictionless, cost.q, model.n_agents, one_lambda, float(model.xi[0]))
    return None if name is None else ORACLES[name](model)


__all__ = ["ORACLES", "FrictionlessOracle", "LeadingOrderOracle", "Oracle", "RiccatiOracle",
           "TwoAgentTanhOracle", "oracle_for", "reference_for", "reference_name"]
