"""The exact answers of a several-asset scenario (docs/model.md section 6): the matrix-Riccati equilibrium
(q = 2) and the frictionless one (lambda = 0), built from the scenario and evaluated on given increments into
the :class:`~marketeq.results.Paths` of a result (with asset axes)."""

from __future__ import annotations

import numpy as np

from marketeq.oracles.frictionless_assets import FrictionlessAssets
from marketeq.oracles.riccati_assets import RiccatiAssets
from marketeq.results import Paths
from marketeq.scenario import Scenario, ScenarioError
from marketeq.scenario.assets import AssetArrays, asset_arrays

__all__ = ["ASSET_ORACLES", "AssetsOracle", "assets_oracle", "assets_paths", "assets_reference_name"]

AssetsOracle = RiccatiAssets | FrictionlessAssets
ASSET_ORACLES = ("frictionless", "riccati")


def assets_reference_name(arrays: AssetArrays) -> str | None:
    """"frictionless" (lambda = 0), "riccati" (q = 2) or None (power costs: no exact answer)."""
    if arrays.frictionless:
        return "frictionless"
    return "riccati" if arrays.q == 2 else None


def assets_oracle(scenario: Scenario, method: str = "auto") -> tuple[str, AssetsOracle] | None:
    """The oracle ``method`` names for a several-asset scenario ("auto": its reference; None when it has
    none). ScenarioError (one line) for an oracle that does not exist for several assets or for this market."""
    arrays = asset_arrays(scenario)
    name = assets_reference_name(arrays) if method == "auto" else method
    if name is None:
        return None
    if name not in ASSET_ORACLES:
        raise ScenarioError("--method", method, f"with market.assets = {scenario.n_assets} choose from auto, "
                                                f"{', '.join(ASSET_ORACLES)} (the others are for one asset)")
    market = (arrays.gamma, arrays.xi, arrays.A)
    rest = (arrays.supply, arrays.beta, arrays.horizon, arrays.steps)
    if name == "frictionless":
        return name, FrictionlessAssets(*market, *rest)
    if arrays.q != 2 or arrays.frictionless:
        raise ScenarioError("--method", method, f"the matrix-Riccati oracle needs q = 2 and lambda > 0, but "
                                                f"q = {arrays.q:g}, lambda = {arrays.lam}; use --method auto")
    return name, RiccatiAssets(*market, arrays.lam, *rest)


def assets_paths(oracle: AssetsOracle, dW: np.ndarray) -> Paths:
    """The oracle along increments dW (B, K, d) as result paths (numpy): ``sigma`` is deterministic and
    repeated on every path, (B, K+1, d, d), so that it has the path axis of every other field."""
    p = oracle.simulate(dW)
    sigma = np.broadcast_to(p.sigma, (p.W.shape[0], *p.sigma.shape)).copy()
    return Paths(t=p.t, W=p.W, dW=p.dW, phi=p.phi, phidot=p.phidot, mu=p.mu, sigma=sigma, S=p.S)
