"""The several-asset matrix-Riccati oracle checked on a 3-asset, 10-agent market.

    python scripts/assets_oracle_check.py [--scenario scenarios/assets_3_quadratic.toml]
                                          [--paths 1000] [--quick] [--record]

Prints, for the scenario's market: the volatility matrix and prices; Sigma_T = A; clearing; under grid
refinement (the same Brownian paths on 100, 200, 400 and 800 steps) the spread of the implied S_0, the
one-step residual of the agents' optimality conditions, the return identity as the closed-form price's drift
and the Euler price against the closed form (all first order in dt); the regression check of optimality;
the frictionless limit and its order; the one-asset and separable reductions; the solve time for N = 100,
d = 3 (--quick: 200 paths in the refinement table). With --record, writes data/results/assets_oracle.json
(rendered into docs/results.md by scripts/results_md.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import Transcript, fmt, print_table, save_record  # noqa: E402

from marketeq.oracles import assets_checks as checks  # noqa: E402
from marketeq.oracles.frictionless_assets import FrictionlessAssets  # noqa: E402
from marketeq.oracles.riccati_assets import RiccatiAssets  # noqa: E402
from marketeq.scenario.assets import asset_arrays  # noqa: E402
from marketeq.scenario_files import load_scenario  # noqa: E402

TABLES: list[dict[str, Any]] = []


def read_market(path: Path) -> dict[str, Any]:
    """The oracle's arguments from a several-asset scenario file."""
    arrays = asset_arrays(load_scenario(path))
    return {"gamma": arrays.gamma, "xi": arrays.xi, "A": arrays.A, "lam": arrays.lam, "supply": arrays.supply,
            "beta": arrays.beta, "horizon": arrays.horizon, "steps": arrays.steps}


def table(caption: str, columns: list[str], rows: list[list[Any]]) -> None:
    print_table(TABLES, caption, columns, rows)


def describe(args: dict[str, Any]) -> RiccatiAssets:
    started = time.perf_counter()
    oracle = RiccatiAssets(**args)
    solve = time.perf_counter() - started
    free = FrictionlessAssets(**{k: v for k, v in args.items() if k != "lam"})
    m = oracle.market
    np.set_printoptions(precision=5, suppress=True)
    print(f"N = {m.n_agents} agents, d = {m.n_assets} assets, T = {m.horizon}, K = {m.steps}; ODE solved in "
          f"{solve * 1e3:.0f} ms\nSigma_0 =\n{oracle.sigma[0]}\nA =\n{m.A}")
    mu0 = m.gbar * oracle.sigma[0] @ oracle.sigma[0].T @ m.supply
    print(f"S_0 = {oracle.s0} (frictionless {free.s0})\nmu_0 = {mu0} (frictionless {free.mu})")
    table("Invariants on the scenario's grid", ["check", "value"], [
        ["max abs(Sigma_T - A)", fmt(np.abs(oracle.sigma[-1] - m.A).max())],
        ["max abs(Sigma_t - A) over t (the endogenous part)", fmt(np.abs(oracle.sigma - m.A).max())],
    ])
    return oracle


def refinement(args: dict[str, Any], n_paths: int) -> None:
    grids = (100, 200, 400, 800)
    fine = np.random.default_rng(0).normal(0.0, np.sqrt(args["horizon"] / grids[-1]), (n_paths, grids[-1], 3))
    rows = []
    for steps in grids:
        oracle = RiccatiAssets(**{**args, "steps": steps})
        paths = oracle.simulate(fine.reshape(n_paths, steps, -1, 3).sum(2))
        spread, bias = checks.s0_spread(oracle, paths)
        rates, holdings = checks.clearing(paths, oracle.market.supply)
        rows.append([steps, fmt(spread), fmt(bias), fmt(checks.foc_drift(oracle, paths)),
                     fmt(checks.price_drift(oracle, paths)), fmt(checks.price_gap(oracle, paths)),
                     f"{rates:.1e} / {holdings:.1e}"])
        del paths
    table(f"Under refinement, the same {n_paths} paths (each error is first order in dt: /2 per halving)",
          ["K", "std implied S_0", "bias of its mean", "optimality residual", "return identity",
           "Euler vs closed-form price", "clearing rates / holdings"], rows)


def regression(args: dict[str, Any]) -> None:
    oracle = RiccatiAssets(**args)
    wrong = RiccatiAssets(**{**args, "lam": np.asarray(args["lam"]) * 0.8})
    rng = np.random.default_rng(1)
    draw = lambda o: o.simulate(rng.normal(0.0, np.sqrt(o.market.dt), (2000, o.market.steps, 3)))  # noqa: E731
    batches, wrong_batches = [draw(oracle) for _ in range(8)], [draw(wrong) for _ in range(2)]
    K = oracle.market.steps
    rows = []
    for k in (K // 4, K // 2, 3 * K // 4):
        rows.append([f"{k / K:.2f} T", fmt(checks.foc_regression(oracle, batches[:2], k)),
                     fmt(checks.foc_regression(oracle, batches, k)),
                     fmt(checks.foc_regression(wrong, wrong_batches, k, lam=oracle.lam))])
    table("Optimality by regression: fitted E_t[int_t^T flow] against Lambda phidot, relative L2 error",
          ["t", "4000 paths", "16000 paths", "costs 20% lower, 4000 paths"], rows)


def frictionless_limit(args: dict[str, Any]) -> None:
    free = FrictionlessAssets(**{k: v for k, v in args.items() if k != "lam"})
    rows, previous = [], None
    for eps in (1.0, 1e-1, 1e-2, 1e-3, 1e-4):
        oracle = RiccatiAssets(**{**args, "lam": np.asarray(args["lam"]) * eps})
        mu0 = oracle.market.gbar * oracle.sigma[0] @ oracle.sigma[0].T @ oracle.market.supply
        errors = np.array([np.abs(oracle.sigma - free.sigma).max(), np.abs(mu0 - free.mu).max(),
                           np.abs(oracle.s0 - free.s0).max()])
        orders = [] if previous is None else [f"{o:.3f}" for o in np.log10(previous / errors)]
        rows.append([f"{eps:g}", *[fmt(e) for e in errors], " / ".join(orders)])
        previous = errors
    table("Frictionless limit, Lambda = eps Lambda_scenario: max errors against the frictionless equilibrium",
          ["eps", "Sigma_t", "mu_0", "S_0", "order p, error ~ eps^p (Sigma / mu_0 / S_0)"], rows)


def reductions(args: dict[str, Any]) -> None:
    from marketeq import load_scenario
    from marketeq.model.brownian import brownian_test_set
    from marketeq.model.market import MarketModel
    from marketeq.oracles import RiccatiOracle

    model = MarketModel.from_scenario(load_scenario(ROOT / "scenarios" / "paper_e1_quadratic_10_agents.toml"))
    one = RiccatiAssets(model.gamma.numpy(), model.xi.numpy()[:, None, None], [[model.alpha]],
                        [model.cost.common_lam], [model.supply], [model.beta], model.horizon, model.n_steps)
    reference = RiccatiOracle(model)
    brownian = brownian_test_set(0, 5, model.n_steps, model.dt)
    ours, theirs = one.simulate(brownian.dW.numpy()[..., None]), reference.paths(brownian).numpy()
    d1 = [np.abs(one.sigma[:, 0, 0] - reference.sigma_curve(model.times.numpy())).max(),
          np.abs(ours.phidot[..., 0] - theirs.phidot).max() / np.abs(theirs.phidot).max(),
          np.abs(ours.mu[..., 0] - theirs.mu).max(), np.abs(ours.S[..., 0] - theirs.S).max()]
    eye, costs = np.eye(3), np.diag(args["lam"]) if np.ndim(args["lam"]) == 2 else np.asarray(args["lam"])
    separable = {**args, "A": np.asarray(args["A"]) * eye, "xi": np.asarray(args["xi"]) * eye, "lam": costs}
    joint = RiccatiAssets(**separable)
    dW = np.random.default_rng(2).normal(0.0, np.sqrt(joint.market.dt), (5, joint.market.steps, 3))
    paths, worst = joint.simulate(dW), np.zeros(4)
    for i in range(3):
        j = slice(i, i + 1)
        alone = RiccatiAssets(separable["gamma"], separable["xi"][:, j, j], separable["A"][j, j],
                              costs[j], np.asarray(separable["supply"])[j],
                              np.asarray(separable["beta"])[j], args["horizon"], args["steps"])
        p = alone.simulate(dW[..., j])
        rates = np.abs(paths.phidot[..., i] - p.phidot[..., 0]).max() / np.abs(p.phidot).max()
        worst = np.maximum(worst, [np.abs(joint.sigma[:, i, i] - alone.sigma[:, 0, 0]).max(), rates,
                                   np.abs(paths.mu[..., i] - p.mu[..., 0]).max(),
                                   np.abs(paths.S[..., i] - p.S[..., 0]).max()])
    table("Reductions (max abs. differences on 5 paths; rates relative to their largest)",
          ["case", "Sigma_t", "rates", "mu_t", "S_t"],
          [["d = 1, E1 vs the one-asset oracle", *map(fmt, d1)],
           ["diagonal A, Lambda, Xi_n vs 3 one-asset markets", *map(fmt, worst)]])


def speed() -> None:
    rng = np.random.default_rng(3)
    xi = rng.normal(0.0, 10.0, (100, 3, 3))
    args = {"gamma": rng.uniform(1.0, 2.0, 100), "xi": xi - xi.mean(0),
            "A": [[1.0, 0.0, 0.0], [0.4, 0.9, 0.0], [0.3, 0.2, 1.2]], "lam": [1e-2, 3e-2, 3e-3],
            "supply": [1.0, 0.5, 2.0], "beta": [2.0, 1.5, 1.0], "horizon": 0.2, "steps": 100}
    times = []
    for _ in range(3):
        started = time.perf_counter()
        oracle = RiccatiAssets(**args)
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    oracle.simulate(rng.normal(0.0, np.sqrt(0.002), (100, 100, 3)))
    table("Speed, N = 100 agents, d = 3 assets, K = 100 (one thread)", ["what", "seconds"],
          [["solve (median of 3)", f"{np.median(times):.3f}"],
           ["simulate 100 paths", f"{time.perf_counter() - started:.3f}"]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ROOT / "scenarios" / "assets_3_quadratic.toml"
    parser.add_argument("--scenario", type=Path, default=default)
    parser.add_argument("--paths", type=int, default=None, help="refinement table paths (default 1000)")
    parser.add_argument("--quick", action="store_true", help="200 paths in the refinement table")
    parser.add_argument("--record", action="store_true", help="write data/results/assets_oracle.json")
    args = parser.parse_args()
    args.paths = args.paths or (200 if args.quick else 1000)
    market = read_market(args.scenario)
    with Transcript() as transcript:
        describe(market)
        refinement(market, args.paths)
        regression(market)
        frictionless_limit(market)
        reductions(market)
        speed()
    if args.record:
        title = f"Several assets: the matrix-Riccati oracle on {args.scenario.name}"
        body = {"tables": TABLES, "output": transcript.text.split("\n\n")[0]}
        path = save_record("assets_oracle", title, body,
                           seeds=[0, 1, 2, 3], quick=args.quick)
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
