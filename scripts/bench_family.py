"""A seeded family of quadratic scenarios with exact Riccati answers, each solved with default settings.

Members: N in 2..12 agents in random order, gamma in [0.5, 5], xi of mixed signs summing to 0 with |xi| up to
40, lambda log-uniform in [1e-3, 1e-1], T in [0.1, 1], K in 50..100; their exact volatility lies above alpha
for some and below it for others. Per member: sigma sup error, mu_0 error, rates relative MSE, the solver's
verdict and wall time; then the median and the worst. Targets: converged, sigma <= 0.5%, mu_0 <= 1%, rates
<= 0.5%, each within 2 minutes.

    python scripts/bench_family.py [--members 20] [--seeds 0 1] [--only 3 7] [--schedule rounds] [--quick]

Each generator seed gives its own family (seed 0's members are those the solver was developed on; seed 1's
are scenarios it never saw). --schedule rounds: the fixed rounds schedule (default settings), for comparison.
--quick: the first 2 members of the first seed, each cut short (at most 3 rounds and 1 minute; rounds:
benchlib.QUICK's two short rounds): a check of the pipeline, not of the solver's accuracy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from benchlib import QUICK, Transcript, save_record

import marketeq
from marketeq.model.market import MarketModel
from marketeq.oracles import RiccatiOracle

QUICK_CHANGES = {"rounds": {k: v for k, v in QUICK.items() if k != "run.test_paths"},
                 "default": {"solver.max_rounds": 3, "solver.max_minutes": 1.0}}
TARGETS = {"sigma": 5e-3, "mu0": 1e-2, "rates": 5e-3, "wall_s": 120.0}


def member(rng: np.random.Generator, index: int) -> marketeq.Scenario:
    """One random quadratic scenario; xi drawn with both signs and centred, then scaled to |xi| <= 40."""
    n = int(rng.integers(2, 13))
    gamma = rng.uniform(0.5, 5.0, n)
    xi = rng.normal(size=n)
    xi -= xi.mean()
    xi *= rng.uniform(1.0, 40.0) / np.abs(xi).max()
    xi[-1] = -xi[:-1].sum()  # exact zero sum after rounding
    lam = float(10 ** rng.uniform(-3, -1))
    horizon = float(rng.uniform(0.1, 1.0))
    steps = int(rng.integers(50, 101))
    agents = "".join(f"[[agents]]\ngamma = {float(g)!r}\nxi = {float(x)!r}\n" for g, x in zip(gamma, xi, strict=True))
    text = (f'name = "family_{index}"\n[market]\nalpha = 1.0\nbeta = 2.0\nsupply = 1.0\nhorizon = {horizon!r}\n'
            f"steps = {steps}\n[frictions]\nlambda = {lam!r}\nq = 2.0\n{agents}[run]\nseed = 0\n")
    return marketeq.load_scenario(f"family_{index}.toml", text=text)


def describe(s: marketeq.Scenario) -> dict[str, float]:
    model = MarketModel.from_scenario(s, "cpu", torch.float64)
    sigma = RiccatiOracle(model).sigma_curve(model.times.numpy())
    return {"N": s.n_agents, "lambda": s.frictions.lam, "T": s.market.horizon, "K": s.market.steps,
            "max_abs_xi": max(abs(x) for x in s.xis), "exact_sigma0": float(sigma[0]),
            "exact_sigma_range": [float(sigma.min()), float(sigma.max())]}


def verdict(row: dict) -> str:
    if row["converged"]:
        return "converged"
    for word in ("budget_exhausted", "unresolved"):
        if row["message"].startswith(word):
            return word
    return row["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=None, help="default 20 (--quick: 2)")
    parser.add_argument("--quick", action="store_true", help="two members, cut short (see above)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the family generator")
    parser.add_argument("--only", type=int, nargs="*", help="run only these member indices")
    parser.add_argument("--schedule", choices=["default", "rounds"], default="default",
                        help="default: the scenario defaults (the adaptive schedule); rounds: the fixed one")
    args = parser.parse_args()
    args.members = args.members or (2 if args.quick else 20)
    if args.quick:
        args.seeds = args.seeds[:1]
    family = []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        family += [(seed, i, member(rng, i)) for i in range(args.members)]
    if args.schedule == "rounds":
        family = [(seed, i, s.replace(**{"solver.schedule": "rounds"})) for seed, i, s in family]
    if args.quick:
        family = [(seed, i, s.replace(**QUICK_CHANGES[args.schedule])) for seed, i, s in family]
    rows = []
    with Transcript() as transcript:
        print("| family | member | N | lambda | T | K | exact sigma_0 | verdict | rounds | sigma err | mu_0 err "
              "| rates rel MSE | wall s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for seed, i, scenario in family:
            if args.only and i not in args.only:
                continue
            info = describe(scenario)
            started = time.perf_counter()
            result = marketeq.solve(scenario)
            wall = time.perf_counter() - started
            m = result.metrics
            converged = m.get("convergence/converged")
            row = {"family": seed, "member": i, **info, "status": result.status, "message": result.message,
                   "converged": bool(converged is not None and converged.value),
                   "rounds": m["convergence/rounds"].value if "convergence/rounds" in m else float("nan"),
                   "wall_s": wall, **{key: m[name].value if name in m else float("nan")  # none: diverged
                                      for key, name in (("sigma", "oracle/sigma_sup_rel_error"),
                                                        ("mu0", "oracle/mu0_rel_error"),
                                                        ("rates", "oracle/rates_rel_mse"))}}
            rows.append(row)
            print(f"| {seed} | {i} | {info['N']} | {info['lambda']:.2g} | {info['T']:.2f} | {info['K']} | "
                  f"{info['exact_sigma0']:.4f} | {verdict(row)} | "
                  f"{row['rounds']:.0f} | {row['sigma']:.2%} | {row['mu0']:.2%} | {row['rates']:.2%} | {wall:.0f} |",
                  flush=True)
        summary = {}
        for key in ("sigma", "mu0", "rates", "wall_s"):
            values = np.array([r[key] for r in rows])
            values = np.where(np.isnan(values), np.inf, values)  # a diverged member is the worst
            summary[key] = {"median": float(np.median(values)), "worst": float(values.max()),
                            "target": TARGETS[key], "met_by": int((values <= TARGETS[key]).sum())}
        converged = sum(r["converged"] for r in rows)
        print(f"\n{len(rows)} members, {converged} converged; " + "; ".join(
            f"{k}: median {v['median']:.3g}, worst {v['worst']:.3g} (target {v['target']:g}, met by {v['met_by']})"
            for k, v in summary.items()))
    save_record(f"family_{args.schedule}", f"Quadratic family with Riccati answers, {args.schedule} schedule",
                {"generator_seeds": args.seeds, "schedule": args.schedule, "members": rows, "summary": summary,
                 "converged": converged, "transcript": transcript.text},
                seeds=sorted({s.run.seed for _, _, s in family}), quick=args.quick)


if __name__ == "__main__":
    main()
