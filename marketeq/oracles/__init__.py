"""Exact and asymptotic answers to test the solvers against (model.md section 3).

Every oracle returns :class:`~marketeq.model.rollout.Paths` on given Brownian increments, the same
structure a solver produces, so metrics compare both on identical paths.
"""

from __future__ import annotations

import torch

from marketeq.model.market import MarketModel
from marketeq.oracles.assets_oracle import assets_reference_name
from marketeq.oracles.base import Oracle
from marketeq.oracles.frictionless import FrictionlessOracle
from marketeq.oracles.leading_order import LeadingOrderOracle
from marketeq.oracles.pde import PdeOracle
from marketeq.oracles.pde_grid import PdeGrid
from marketeq.oracles.riccati import RiccatiOracle
from marketeq.oracles.tanh import TwoAgentTanhOracle
from marketeq.scenario import Scenario
from marketeq.scenario.assets import asset_arrays

ORACLES: dict[str, type[Oracle]] = {
    "frictionless": FrictionlessOracle,
    "leading-order": LeadingOrderOracle,
    "pde": PdeOracle,
    "riccati": RiccatiOracle,
    "tanh": TwoAgentTanhOracle,
}


def _reference(frictionless: bool, q: float, n_agents: int, all_costly: bool) -> str | None:
    if frictionless:
        return "frictionless"
    if q == 2.0:
        return "riccati"
    if n_agents == 2 and all_costly:
        return "pde"
    return None


def reference_name(scenario: Scenario) -> str | None:
    """Which reference answer a scenario has, without building it (the Riccati oracle solves an ODE, the PDE
    a grid): "frictionless" (lambda = 0), "riccati" (q = 2), "pde" (two agents, q < 2, every lambda > 0;
    numerical, exact up to its grid) or None. The leading-order approximation is available by name. Several
    assets: "frictionless", "riccati" (the matrix Riccati equations) or None."""
    if scenario.n_assets > 1:
        return assets_reference_name(asset_arrays(scenario))
    lams = scenario.lams
    return _reference(max(lams) == 0, scenario.frictions.q, scenario.n_agents, min(lams) > 0)


def oracle_names(scenario: Scenario) -> list[str]:
    """The oracles that apply to a scenario, the reference first."""
    names = [reference_name(scenario)]
    if scenario.n_assets > 1:
        return [n for n in names if n is not None]
    lams = scenario.lams
    if scenario.n_agents == 2 and len(set(lams)) == 1 and lams[0] > 0 and scenario.agents[0].xi != 0:
        names.append("leading-order")
    return [n for n in dict.fromkeys(names) if n is not None]


def oracle_for(model: MarketModel) -> Oracle | None:
    """The equilibrium oracle of a market when one exists: frictionless (lambda = 0), Riccati (q = 2) or the
    two-agent PDE (q < 2, numerical)."""
    oracle = reference_for(model)
    return oracle if oracle is not None and oracle.exact else None


def reference_for(model: MarketModel, grid: PdeGrid | None = None) -> Oracle | None:
    """A curve to overlay: the exact oracle when there is one (frictionless, Riccati), else the PDE reference
    for two agents with power costs (q < 2; on ``grid``, by default :class:`PdeGrid`), else None."""
    cost = model.cost
    lam = torch.as_tensor(cost.lam)
    name = _reference(cost.frictionless, cost.q, model.n_agents, float(lam.min()) > 0)
    if name == "pde":
        return PdeOracle(model, grid)
    return None if name is None else ORACLES[name](model)


__all__ = ["ORACLES", "FrictionlessOracle", "LeadingOrderOracle", "Oracle", "PdeOracle", "RiccatiOracle",
           "TwoAgentTanhOracle", "oracle_for", "oracle_names", "reference_for", "reference_name"]
