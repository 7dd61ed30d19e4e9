"""Several risky assets in a scenario (docs/model.md section 6): the number-or-array fields and their rules.

With ``market.assets = 1`` (the default) every field is a number, as it always was. With ``market.assets = d``
(d >= 2): ``alpha`` is the d x d matrix A of ``S_T = beta T + A W_T`` (row i: asset i's loadings on the d
Brownian factors), ``beta`` and ``supply`` are lists of d numbers, ``frictions.lambda`` is one number (the
same cost for every asset), a list of d numbers (the diagonal of Lambda) or, for q = 2, a symmetric positive
definite d x d matrix, and each agent's ``xi`` is the d x d matrix Xi_n of its endowment's loading Xi_n W_t.
The shapes depend on d, so they are checked here, once the whole scenario is read: every problem is a
:class:`~marketeq.scenario.fields.Rule` naming the field and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np

from marketeq.scenario.fields import Allowed, Numbers, Rule, ScenarioError, numbers

# The functions below take the Scenario (marketeq.scenario builds it from the types here, so it cannot be
# imported back, not even for type checking: tests/test_layers.py counts that as a cycle).
Scenario = Any

__all__ = ["MAX_ASSETS", "AlphaField", "AssetArrays", "BetaField", "CostField", "SupplyField", "XiField",
           "asset_arrays", "check_assets", "refuse_unsolved_assets"]

MAX_ASSETS = 100
# A beyond this condition number is singular in float64 for the oracle's solve of (A')^-1 Xi_n.
MAX_CONDITION = 1e12

AlphaField = Annotated[Numbers, numbers((0, 2), low=0.0), Allowed(
    "a number > 0, or with market.assets = d an invertible d x d matrix A (row i: asset i's loadings)")]
BetaField = Annotated[Numbers, numbers((0, 1)), Allowed(
    "a number, or with market.assets = d a list of d numbers")]
SupplyField = Annotated[Numbers, numbers((0, 1), low=0.0), Allowed(
    "a number > 0, or with market.assets = d a list of d numbers > 0")]
CostField = Annotated[Numbers, numbers((0, 1, 2), low=0.0, strict=False), Allowed(
    "a number >= 0, or with market.assets = d a list of d numbers >= 0 (the diagonal of Lambda) or, for "
    "q = 2, a symmetric positive definite d x d matrix Lambda")]
XiField = Annotated[Numbers, numbers((0, 2)), Allowed(
    "a number, or with market.assets = d a d x d matrix Xi_n (row i, column j: loading of the endowment's "
    "factor i on W^j)")]


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _one_asset(s: Scenario) -> None:
    """d = 1: every field a number, as before several assets existed."""
    fix = "market.assets = 1 (one asset) takes a number here; for several assets set market.assets = d"
    for field, value in (("market.alpha", s.market.alpha), ("market.beta", s.market.beta),
                         ("market.supply", s.market.supply), ("frictions.lambda", s.frictions.lam)):
        if _is_list(value):
            raise Rule(field, value, fix)
    for i, agent in enumerate(s.agents):
        if _is_list(agent.xi):
            raise Rule(f"agents[{i}].xi", agent.xi, fix)


def _vector(field: str, value: Any, d: int, what: str) -> np.ndarray:
    if not _is_list(value) or _is_list(value[0]) or len(value) != d:
        got = "a number" if not _is_list(value) else (
            "a matrix" if _is_list(value[0]) else f"{len(value)} numbers")
        raise Rule(field, value, f"market.assets = {d} needs a list of {d} numbers ({what}), not {got}")
    return np.array(value, dtype=float)


def _matrix(field: str, value: Any, d: int, what: str) -> np.ndarray:
    rows = value if _is_list(value) and _is_list(value[0]) else None
    if rows is None or len(rows) != d or any(len(row) != d for row in rows):
        got = ("a number" if not _is_list(value) else "a list of numbers" if rows is None
               else f"{len(rows)} rows of {', '.join(sorted({str(len(r)) for r in rows}))} entries")
        raise Rule(field, value, f"market.assets = {d} needs a {d} x {d} matrix ({what}): {d} lists of {d} "
                                 f"numbers, not {got}")
    return np.array(rows, dtype=float)


def _market(s: Scenario, d: int) -> None:
    m = s.market
    A = _matrix("market.alpha", m.alpha, d, "A, row i: asset i's loadings on the Brownian factors")
    condition = np.linalg.cond(A)
    if not condition < MAX_CONDITION:
        raise Rule("market.alpha", m.alpha, f"A is singular (condition number {condition:.3g}): the d terminal "
                                            "values must be driven by d independent factors; give an invertible "
                                            "matrix")
    _vector("market.beta", m.beta, d, "each asset's drift")
    supply = _vector("market.supply", m.supply, d, "each asset's net supply")
    bad = np.flatnonzero(supply <= 0)
    if bad.size:
        raise Rule(f"market.supply[{bad[0]}]", float(supply[bad[0]]), "must be > 0 (net supply of the asset)")


def _costs(s: Scenario, d: int) -> None:
    lam, q = s.frictions.lam, s.frictions.q
    if not _is_list(lam):
        return  # one number >= 0: the same cost on every asset (checked by the field)
    if not _is_list(lam[0]):
        diagonal = _vector("frictions.lambda", lam, d, "the diagonal of Lambda, one cost per asset")
        bad = np.flatnonzero(diagonal < 0)
        if bad.size:
            raise Rule(f"frictions.lambda[{bad[0]}]", float(diagonal[bad[0]]), "must be >= 0 (a cost)")
        if 0 < np.count_nonzero(diagonal) < d:
            raise Rule("frictions.lambda", lam, "some assets cost nothing to trade and others do: give every "
                                                "asset a cost > 0, or all 0 (frictionless)")
        return
    matrix = _matrix("frictions.lambda", lam, d, "Lambda of G(x) = x' Lambda x / 2")
    if q != 2:
        raise Rule("frictions.lambda", lam, f"a cost matrix needs q = 2 (G(x) = x' Lambda x / 2), but q = {q:g}; "
                                            "give a list of d costs (G = sum_i lambda_i/q |x_i|^q)")
    scale = float(np.abs(matrix).max())
    if not np.allclose(matrix, matrix.T, rtol=0.0, atol=1e-12 * scale):
        raise Rule("frictions.lambda", lam, "Lambda is not symmetric; give a symmetric positive definite matrix")
    smallest = float(np.linalg.eigvalsh(matrix).min()) if scale > 0 else 0.0
    if not smallest > 1e-12 * scale:
        raise Rule("frictions.lambda", lam, f"Lambda is not positive definite (smallest eigenvalue "
                                            f"{smallest:.3g}): every direction of trading must cost something; "
                                            "give a symmetric positive definite matrix")


def _agents(s: Scenario, d: int) -> None:
    for i, agent in enumerate(s.agents):
        if agent.lam is not None:
            raise Rule(f"agents[{i}].lambda", agent.lam, "an agent's own cost is for one asset only; with "
                                                         "several assets every agent pays frictions.lambda")
    xis = [_matrix(f"agents[{i}].xi", a.xi, d, "the agent's endowment loading Xi_n")
           for i, a in enumerate(s.agents)]
    stack = np.stack(xis)
    unit = max(1.0, float(np.abs(stack).max()))
    total = (stack / unit).sum(0)
    if np.abs(total).max() > 1e-9 * max(1.0 / unit, float(np.abs(stack / unit).sum(0).max())):
        worst = np.unravel_index(np.abs(total).argmax(), total.shape)
        raise Rule("agents.xi", [a.xi for a in s.agents],
                   f"they sum to a matrix with entry {tuple(int(k) for k in worst)} = {total[worst] * unit:.6g}, "
                   "but the endowment loadings Xi_n must sum to the zero matrix")


def check_assets(s: Scenario) -> None:
    """Refuse a scenario whose fields do not have the shapes its number of assets needs (one Rule)."""
    d = s.market.assets
    if d == 1:
        _one_asset(s)
        return
    with np.errstate(all="ignore"):  # huge entries: the checks below refuse what overflows, silently
        _market(s, d)
        _costs(s, d)
        _agents(s, d)


@dataclass(frozen=True)
class AssetArrays:
    """A scenario's market as arrays, for any number of assets d (d = 1 too): gamma (N,), xi (N, d, d),
    A (d, d), beta (d,), supply (d,), lam as written (a number, (d,) diagonal or (d, d) matrix)."""

    gamma: np.ndarray
    xi: np.ndarray
    A: np.ndarray
    beta: np.ndarray
    supply: np.ndarray
    lam: Any
    q: float
    horizon: float
    steps: int

    @property
    def frictionless(self) -> bool:
        return not np.any(np.asarray(self.lam, dtype=float))


def asset_arrays(s: Scenario) -> AssetArrays:
    """The arrays of a validated scenario: one asset becomes 1 x 1 matrices."""
    d, m = s.market.assets, s.market
    return AssetArrays(
        gamma=np.array(s.gammas, dtype=float),
        xi=np.array(s.xis, dtype=float).reshape(s.n_agents, d, d),
        A=np.array(m.alpha, dtype=float).reshape(d, d),
        beta=np.array(m.beta, dtype=float).reshape(d),
        supply=np.array(m.supply, dtype=float).reshape(d),
        lam=s.frictions.lam if d > 1 else float(s.frictions.lam),
        q=s.frictions.q, horizon=m.horizon, steps=m.steps)


def refuse_unsolved_assets(scenario: Scenario) -> None:
    """One line naming the field for a several-asset scenario no solver handles: power costs, no costs, or a
    method other than the default schedule (:mod:`marketeq.solvers.assets_solver` runs the rest). Here, not
    in the solver, so that the desktop app can ask without loading the engine."""
    if scenario.n_assets == 1:
        return
    d, q, lam = scenario.n_assets, scenario.frictions.q, scenario.frictions.lam
    if q != 2:
        raise ScenarioError("frictions.q", q, f"with market.assets = {d} the solver needs quadratic costs "
                                              "(q = 2); power costs have no solver for several assets yet")
    if asset_arrays(scenario).frictionless:
        raise ScenarioError("frictions.lambda", lam,
                            f"with market.assets = {d} and no costs there is nothing to solve: 'marketeq "
                            "oracle' gives the exact frictionless answer; give costs > 0 to solve")
    if scenario.solver.method != "rlink" or not scenario.solver.adaptive:
        raise ScenarioError("solver.method", scenario.solver.method,
                            f"with market.assets = {d} only the default schedule runs (method rlink with the "
                            "adaptive schedule); remove the [solver] method and schedule settings")
