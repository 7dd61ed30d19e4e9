"""The d-asset matrix-Riccati oracle: against the one-asset oracle, the unreduced equations, d independent
markets, the frictionless limit, and the equilibrium conditions themselves (docs/model.md, section 6)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from marketeq.model.brownian import brownian_test_set
from marketeq.oracles import RiccatiOracle
from marketeq.oracles import assets_checks as checks
from marketeq.oracles.frictionless_assets import FrictionlessAssets
from marketeq.oracles.riccati_assets import RiccatiAssets

A3 = np.array([[1.0, 0.0, 0.0], [0.4, 0.9, 0.0], [0.3, 0.2, 1.2]])


def market(n: int = 5, d: int = 3, seed: int = 0, **changes):
    """A market with correlated A, a full cost matrix and full endowment loadings."""
    rng = np.random.default_rng(seed)
    xi = rng.normal(0.0, 8.0, (n, d, d))
    root = rng.normal(0.0, 0.05, (d, d))
    args = dict(gamma=np.linspace(1.0, 2.0, n), xi=xi - xi.mean(0), A=A3[:d, :d],
                lam=root @ root.T + 1e-2 * np.eye(d), supply=np.linspace(1.0, 2.0, d),
                beta=np.linspace(2.0, 1.0, d), horizon=0.2)
    return {**args, **changes}


def increments(n_paths: int, steps: int, d: int, seed: int = 1, horizon: float = 0.2) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, np.sqrt(horizon / steps), (n_paths, steps, d))


def coarsen(dW: np.ndarray, factor: int) -> np.ndarray:
    """The same Brownian paths on a grid `factor` times coarser."""
    return dW.reshape(dW.shape[0], -1, factor, dW.shape[2]).sum(2)


def test_one_asset_is_the_one_asset_oracle(e1_model):
    m = e1_model
    xi = m.xi.numpy()[:, None, None]
    oracle = RiccatiAssets(m.gamma.numpy(), xi, [[m.alpha]], [[m.cost.common_lam]], [m.supply], [m.beta],
                           m.horizon, m.n_steps)
    reference = RiccatiOracle(m)
    sigma = reference.sigma_curve(m.times.numpy())
    np.testing.assert_allclose(oracle.sigma[:, 0, 0], sigma, rtol=0, atol=1e-10)
    assert oracle.s0[0] == pytest.approx(reference.s0, abs=1e-10)
    brownian = brownian_test_set(0, 5, m.n_steps, m.dt)
    ours, theirs = oracle.simulate(brownian.dW.numpy()[..., None]), reference.paths(brownian).numpy()
    scale = np.abs(theirs.phidot).max()
    np.testing.assert_allclose(ours.phidot[..., 0] / scale, theirs.phidot / scale, rtol=0, atol=1e-10)
    for name in ("phi", "mu", "S"):
        np.testing.assert_allclose(getattr(ours, name)[..., 0], getattr(theirs, name), rtol=0, atol=1e-10)


def test_modal_solution_solves_the_unreduced_equations():
    """F and H of all N agents, integrated directly in (N d)^2 unknowns, against the modal solution."""
    args = market(n=4, d=2)
    oracle = RiccatiAssets(**args, steps=10)
    g, xi, lam_inv, n, d = args["gamma"], args["xi"], np.linalg.inv(args["lam"]), 4, 2
    gbar = 1.0 / np.sum(1.0 / g)
    R = np.kron(np.diag(g) - np.outer(np.ones(n), g) / n, np.eye(d))
    E = (g[:, None, None] * xi - np.mean(g[:, None, None] * xi, 0)).reshape(n * d, d)
    P = np.kron(np.eye(n), lam_inv)

    def sigma_of(H: np.ndarray) -> np.ndarray:
        return args["A"] + gbar * np.einsum("n,nij->ij", 1.0 / g, H.reshape(n, d, d))

    def rhs(_tau: float, y: np.ndarray) -> np.ndarray:
        F, H = y[: (n * d) ** 2].reshape(n * d, n * d), y[(n * d) ** 2 :].reshape(n * d, d)
        sigma = sigma_of(H)
        dF = R @ np.kron(np.eye(n), sigma @ sigma.T) - F @ P @ F
        return np.concatenate([dF.ravel(), (np.kron(np.eye(n), sigma) @ E - F @ P @ H).ravel()])

    taus = [0.05, 0.2]
    sol = solve_ivp(rhs, (0, 0.2), np.zeros((n * d) ** 2 + n * d * d), method="DOP853", rtol=1e-12,
                    atol=1e-14, t_eval=taus)
    F, H = oracle.gains(0.2 - np.array(taus))
    for i in range(len(taus)):
        full_F = sol.y[: (n * d) ** 2, i].reshape(n, d, n, d).transpose(0, 2, 1, 3)
        full_H = sol.y[(n * d) ** 2 :, i].reshape(n, d, d)
        np.testing.assert_allclose(F[i], full_F, atol=1e-9 * np.abs(full_F).max())
        np.testing.assert_allclose(H[i], full_H, atol=1e-9 * np.abs(full_H).max())
        np.testing.assert_allclose(oracle.sigma_at([0.2 - taus[i]])[0], sigma_of(full_H), atol=1e-10)


def test_separable_market_is_independent_one_asset_markets():
    d, n = 3, 4
    args = market(n=n, d=d)
    diag = lambda x: x * np.eye(d)  # noqa: E731 - keeps the diagonal of the last two axes
    args.update(A=diag(A3), lam=np.array([1e-2, 3e-2, 3e-3]), xi=diag(args["xi"]))
    dW = increments(20, 50, d)
    joint = RiccatiAssets(**args, steps=50)
    paths = joint.simulate(dW)
    off_diagonal = joint.sigma - diag(joint.sigma)
    assert np.abs(off_diagonal).max() < 1e-14
    for i in range(d):
        j = slice(i, i + 1)
        one = RiccatiAssets(args["gamma"], args["xi"][:, j, j], args["A"][j, j], args["lam"][j],
                            args["supply"][j], args["beta"][j], 0.2, 50)
        alone = one.simulate(dW[..., i : i + 1])
        np.testing.assert_allclose(joint.sigma[:, i, i], one.sigma[:, 0, 0], rtol=0, atol=1e-10)
        assert joint.s0[i] == pytest.approx(one.s0[0], abs=1e-10)
        scale = np.abs(alone.phidot).max()
        np.testing.assert_allclose(paths.phidot[..., i] / scale, alone.phidot[..., 0] / scale, rtol=0,
                                   atol=1e-10)
        for name in ("phi", "mu", "S"):
            np.testing.assert_allclose(getattr(paths, name)[..., i], getattr(alone, name)[..., 0], rtol=0,
                                       atol=1e-10)


def test_equal_risk_aversions_give_the_matrix_tanh_rates():
    """With one gamma, Sigma = A throughout and each agent trades towards its frictionless holding,
    phidot^n = -Lambda^-1 f(T-t) (phi^n - gbar s/gamma + (A')^-1 Xi_n W) with f' = gamma A A' - f Lambda^-1 f:
    f = Lambda^(1/2) U diag(k tanh(k tau)) U' Lambda^(1/2) with U diag(k^2) U' = gamma Lambda^(-1/2) A A'
    Lambda^(-1/2): the one-asset tanh formula as a matrix."""
    args = market(n=3, gamma=np.full(3, 1.5))
    oracle = RiccatiAssets(**args, steps=50)
    m = oracle.market
    np.testing.assert_allclose(oracle.sigma, np.broadcast_to(m.A, oracle.sigma.shape), atol=1e-12)
    w, U = np.linalg.eigh(args["lam"])
    root = U @ np.diag(np.sqrt(w)) @ U.T
    kappa2, V = np.linalg.eigh(1.5 * np.linalg.solve(root, np.linalg.solve(root, m.A @ m.A.T).T))
    kappa = np.sqrt(kappa2)
    paths = oracle.simulate(increments(30, 50, 3))
    for k in (0, 25, 49):
        tau = m.horizon - m.times[k]
        f = root @ V @ np.diag(kappa * np.tanh(kappa * tau)) @ V.T @ root
        target = m.phibar - np.einsum("nij,pj->pni", np.linalg.solve(m.A.T[None], m.xi), paths.W[:, k])
        expected = -(paths.phi[:, k] - target) @ (np.linalg.solve(args["lam"], f)).T
        np.testing.assert_allclose(paths.phidot[:, k], expected, atol=1e-9 * np.abs(expected).max())


def test_small_costs_tend_to_frictionless_at_rate_one_half():
    args = market()
    free = FrictionlessAssets(**{k: v for k, v in args.items() if k != "lam"}, steps=20)
    errors = []
    for eps in (1e-1, 1e-2, 1e-3):
        oracle = RiccatiAssets(**{**args, "lam": args["lam"] * eps}, steps=20)
        mu0 = oracle.market.gbar * oracle.sigma[0] @ oracle.sigma[0].T @ oracle.market.supply
        errors.append([np.abs(oracle.sigma - free.sigma).max(), np.abs(mu0 - free.mu).max(),
                       np.abs(oracle.s0 - free.s0).max()])
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 2.8) & (ratios < 3.5)), ratios  # sqrt(10) = 3.16 per decade of cost
    assert errors[-1][0] < 0.02


def test_equilibrium_conditions_hold_up_to_the_euler_step():
    """Clearing exactly; Sigma_T = A; mu_0 = gbar Sigma_0 Sigma_0' s; and, first order in dt: the implied S_0
    agrees across paths (the price is consistent with S_T = beta T + A W_T), the agents' marginal values have
    the drift their optimality conditions require, the closed-form price drifts at the return identity."""
    args = market(n=6)
    fine = increments(400, 160, 3)
    results = []
    for steps in (40, 160):
        oracle = RiccatiAssets(**args, steps=steps)
        paths = oracle.simulate(coarsen(fine, 160 // steps))
        rates, holdings = checks.clearing(paths, oracle.market.supply)
        assert rates < 1e-13 and holdings < 1e-12
        assert np.abs(oracle.sigma[-1] - oracle.market.A).max() < 1e-15
        mu0 = oracle.market.gbar * oracle.sigma[0] @ oracle.sigma[0].T @ oracle.market.supply
        np.testing.assert_allclose(paths.mu[:, 0], np.broadcast_to(mu0, (400, 3)), rtol=1e-12)
        results.append([*checks.s0_spread(oracle, paths)[:1], checks.foc_drift(oracle, paths),
                        checks.price_drift(oracle, paths), checks.price_gap(oracle, paths)])
    coarse, refined = np.array(results)
    assert np.all(coarse / refined > 3.0) and np.all(refined < 5e-3), (coarse, refined)


def test_regression_confirms_the_optimality_condition():
    args = market(n=4)
    oracle = RiccatiAssets(**args, steps=40)
    batches = [oracle.simulate(increments(1000, 40, 3, seed)) for seed in range(2)]
    assert checks.foc_regression(oracle, batches, 30) < 0.03
    # It tells optimal rates from nearly optimal ones: the equilibrium of a market whose costs are 20% lower,
    # judged by this market's costs, is off by about 25%
    wrong = RiccatiAssets(**{**args, "lam": args["lam"] * 0.8}, steps=40)
    assert checks.foc_regression(wrong, [wrong.simulate(increments(1000, 40, 3))], 30, lam=args["lam"]) > 0.15


def test_frictionless_closed_form():
    args = market()
    free = FrictionlessAssets(**{k: v for k, v in args.items() if k != "lam"}, steps=20)
    paths = free.simulate(increments(50, 20, 3))
    m = free.market
    np.testing.assert_allclose(paths.S[:, -1], m.terminal_price(paths.W[:, -1]), atol=1e-12)
    np.testing.assert_allclose(paths.phi.sum(2), np.broadcast_to(m.supply, paths.mu.shape), atol=1e-10)
    # Without costs each agent's flow of marginal benefit vanishes: mu = gamma_n Sigma (Sigma' phi^n + Xi_n W)
    assert np.abs(m.flow(paths.mu, paths.sigma, paths.phi, paths.W)).max() < 1e-10
    np.testing.assert_allclose(paths.mu, m.return_identity(paths.sigma, paths.phi, paths.W), atol=1e-10)
    np.testing.assert_allclose(free.s0, (m.beta - m.gbar * m.A @ m.A.T @ m.supply) * m.horizon)


def _singular() -> np.ndarray:
    return np.array([[1.0, 2.0, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize(("change", "field"), [
    ({"gamma": np.ones((5, 1))}, "gamma"),
    ({"gamma": np.array([1.0, 1.0, -1.0, 1.0, 1.0])}, "gamma"),
    ({"xi": np.zeros((5, 3, 2))}, "Xi"),
    ({"xi": np.ones((5, 3, 3))}, "Xi"),
    ({"A": np.ones((3, 2))}, "A"),
    ({"A": np.ones(3)}, "A"),
    ({"A": _singular()}, "A"),
    ({"lam": np.diag([1e-2, -1e-3, 1e-2])}, "Lambda"),
    ({"lam": np.array([[1e-2, 2e-2, 0], [0, 1e-2, 0], [0, 0, 1e-2]])}, "Lambda"),
    ({"lam": np.ones((2, 2))}, "Lambda"),
    ({"lam": np.array([1e-2, 1e-2])}, "Lambda"),
    ({"supply": [1.0, 2.0]}, "s"),
    ({"beta": [[1.0, 2.0, 3.0]]}, "beta"),
    ({"horizon": 0.0}, "T"),
])
def test_malformed_input_names_the_argument(change, field):
    with pytest.raises(ValueError) as info:
        RiccatiAssets(**market(**change), steps=10)
    message = str(info.value)
    assert message.startswith(f"{field}: ") and "\n" not in message


def test_wrong_increments_are_refused():
    oracle = RiccatiAssets(**market(), steps=10)
    with pytest.raises(ValueError, match=r"^dW: shape \(4, 10, 2\), expected \(B, 10, 3\)"):
        oracle.simulate(np.zeros((4, 10, 2)))
