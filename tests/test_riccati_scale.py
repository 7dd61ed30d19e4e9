"""The modal Riccati oracle against the direct matrix integration it replaced, and against itself.

``data/riccati_reference.npz`` holds sigma, E[S_0] and the feedback gains of four markets computed once with
the previous oracle (N^2 + N unknowns integrated by Radau with a finite-difference Jacobian, rtol 1e-11, and
lambda taken in float64, as every oracle now takes it), the markets being those of :func:`market` below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.model.rollout import simulate
from marketeq.oracles import FrictionlessOracle, RiccatiOracle
from marketeq.solvers.losses import clearing_error

REFERENCE = Path(__file__).parent / "data" / "riccati_reference.npz"
# (N, lambda, per-agent lambdas, horizon): strong and weak costs, a common and per-agent cost scales
CASES = [(5, 1e-1, False, 0.2), (12, 1e-3, True, 0.2), (30, 1e-2, False, 0.2), (30, 1e-3, False, 1.0)]


def market(quickstart, n: int, lam: float, per_agent: bool, horizon: float) -> MarketModel:
    """Gammas uniform on [1, 3], xi normal (sd 10) and centred, per-agent lambdas within a factor 2."""
    rng = np.random.default_rng(n)
    gamma, xi = rng.uniform(1, 3, n), rng.normal(0, 10, n)
    xi -= xi.mean()
    agents = [{"gamma": float(g), "xi": float(x)} for g, x in zip(gamma, xi, strict=True)]
    if per_agent:
        for agent in agents:
            agent["lambda"] = float(lam * rng.uniform(0.5, 2))
    scenario = quickstart.replace(agents=agents, **{"frictions.lambda": lam, "market.horizon": horizon})
    return MarketModel.from_scenario(scenario)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_agrees_with_the_direct_integration_to_1e9(quickstart, index):
    model = market(quickstart, *CASES[index])
    ref = np.load(REFERENCE)
    oracle = RiccatiOracle(model)
    np.testing.assert_allclose(oracle.sigma_curve(np.linspace(0, model.horizon, 21)), ref[f"sigma{index}"],
                               rtol=0, atol=1e-9)
    assert oracle.s0 == pytest.approx(float(ref[f"s0{index}"]), abs=1e-9)
    A, b = (t.numpy() for t in oracle.feedback())
    for got, want in ((A[[0, 25]], ref[f"A{index}"]), (b[[0, 25]], ref[f"b{index}"])):
        assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max()


def test_modal_paths_equal_the_feedback_roll_out(quickstart):
    model = market(quickstart, 12, 1e-3, True, 0.2)
    oracle = RiccatiOracle(model)
    brownian = brownian_test_set(0, 300, model.n_steps, model.dt)
    A, b = oracle.feedback()
    direct = simulate(model, brownian, rates=lambda k, D, W: D @ A[k].T + W.unsqueeze(-1) * b[k],
                      sigma=lambda D, W: torch.as_tensor(oracle.sigma_curve(model.times.numpy())),
                      mu=lambda D, W, phi, sigma: model.return_identity(sigma, phi, W), s0=oracle.s0)
    modal = oracle.paths(brownian)
    for name in ("phi", "phidot", "mu", "sigma", "S"):
        got, want = getattr(modal, name), getattr(direct, name)
        assert float((got - want).abs().max()) <= 1e-10 * max(1.0, float(want.abs().max())), name
    assert float(clearing_error(modal.phidot).max()) < 1e-20


def test_implicit_integration_with_the_analytic_jacobian_agrees(quickstart):
    model = market(quickstart, 30, 1e-3, False, 1.0)
    explicit, implicit = RiccatiOracle(model), RiccatiOracle(model, method="Radau")
    t = np.linspace(0, model.horizon, 11)
    np.testing.assert_allclose(implicit.sigma_curve(t), explicit.sigma_curve(t), rtol=0, atol=1e-9)
    jac = explicit._jacobian(0.3, y := np.random.default_rng(1).normal(size=2 * model.n_agents + 1))
    eps = 1e-6
    numeric = np.stack([(explicit._rhs(0.3, y + eps * e) - explicit._rhs(0.3, y - eps * e)) / (2 * eps)
                        for e in np.eye(len(y))], axis=1)
    np.testing.assert_allclose(jac, numeric, rtol=1e-6, atol=1e-6)


def test_large_market_matches_the_matrix_equation(quickstart):
    # N = 80: integrate F and H themselves with a matrix right-hand side, independently of the eigenbasis
    model = market(quickstart, 80, 1e-3, True, 0.2)
    g, xi = model.gamma.numpy(), model.xi.numpy()
    lam = np.asarray(model.cost.lam)
    n, w = len(g), (1 / lam) / np.sum(1 / lam)
    risk, exposure = np.diag(g) - np.outer(np.ones(n), w * g), g * xi - np.sum(w * g * xi)

    def rhs(_tau: float, y: np.ndarray) -> np.ndarray:
        H, F = y[:n], y[n:].reshape(n, n)
        sigma = model.alpha + model.gbar * np.sum(H / g)
        return np.concatenate([sigma * exposure - F @ (H / lam), (sigma**2 * risk - (F / lam) @ F).ravel()])

    y = solve_ivp(rhs, (0, model.horizon), np.zeros(n + n * n), method="DOP853", rtol=1e-12,
                  atol=1e-14).y[:, -1]
    H, F, _ = RiccatiOracle(model)._state(np.array([model.horizon]))
    assert np.abs(H[0] - y[:n]).max() <= 1e-9 * np.abs(y[:n]).max()
    assert np.abs(F[0] - y[n:].reshape(n, n)).max() <= 1e-9 * np.abs(y[n:]).max()


def test_frictionless_paths_of_many_agents_hold_their_targets(quickstart):
    model = market(quickstart, 500, 1e-2, False, 0.2)
    model = MarketModel(**{**model.__dict__, "cost": type(model.cost)(0.0, 2.0)})
    brownian = brownian_test_set(0, 20, model.n_steps, model.dt)
    paths = FrictionlessOracle(model).paths(brownian)
    assert paths.phi.shape == (20, model.n_steps + 1, 500)
    torch.testing.assert_close(paths.phi.sum(-1), torch.full_like(paths.W, model.supply))
