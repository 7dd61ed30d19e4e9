"""The outer iteration compared: how fast each scheme reaches the time-discretised game's equilibrium.

On the members of the quadratic family (scripts/bench_family.py), on each member's own grid, with the agents'
exact best response (marketeq/solvers/quadratic.py) so that only the outer scheme differs:

- plain: rounds ``sigma <- market(best response to sigma)`` from the frictionless start (sigma = alpha);
- anderson: the same rounds with Anderson mixing of the volatility (the mixer of the power-cost schedule);
- sweep: the one backward pass that alternates the agents' Riccati step and the market's volatility step.

Per scheme and member: the outer error after each round (sup over t of |sigma - sigma*| / sigma*, sigma* the
sweep's answer, whose own fixed-point residual is printed), the rounds to reach 1e-8, and the wall time (one
thread). Nothing here is random: the exact best response and market use no paths.

    python scripts/outer_schemes.py [--seed 0] [--members 20] [--rounds 30] [--quick]

--quick: the first 4 members (a check of the pipeline).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_family import member
from benchlib import Transcript, save_record

from marketeq.model.market import MarketModel
from marketeq.solvers.fixed_point import AndersonMixer, volatility_pass
from marketeq.solvers.moments import linear_moments, return_slopes
from marketeq.solvers.quadratic import best_response, equilibrium_sweep

REACHED = 1e-8


def round_map(model: MarketModel, sigma: torch.Tensor) -> torch.Tensor:
    """One round: the market the agents' best response to ``sigma`` implies."""
    moments = linear_moments(model, *best_response(model, sigma), model.dt)
    return volatility_pass(model, return_slopes(model, moments)[1])


def rounds(model: MarketModel, target: torch.Tensor, count: int, mixed: bool) -> tuple[list[float], float]:
    """Outer errors after each of ``count`` rounds (inf once non-finite or non-positive) and the wall time."""
    sigma = torch.full_like(target, model.alpha)
    mixer = AndersonMixer(positive=True) if mixed else None
    errors: list[float] = []
    started = time.perf_counter()
    for _ in range(count):
        new = round_map(model, sigma)
        sigma = mixer.update(sigma, new) if mixer else new
        if not bool(torch.isfinite(sigma).all()) or float(sigma.min()) <= 0.0:
            errors += [float("inf")] * (count - len(errors))
            break
        errors.append(float(((sigma - target) / target).abs().max()))
        if errors[-1] < REACHED:
            break
    return errors, time.perf_counter() - started


def reached(errors: list[float]) -> str:
    hit = [i + 1 for i, e in enumerate(errors) if e < REACHED]
    if hit:
        return str(hit[0])
    return "diverged" if errors and not np.isfinite(errors[-1]) else f"no ({errors[-1]:.1e})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the family generator")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30, help="rounds at most for the round schemes")
    parser.add_argument("--quick", action="store_true", help="the first 4 members only")
    args = parser.parse_args()
    if args.quick:
        args.members = min(args.members, 4)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    family = [member(rng, i) for i in range(args.members)]
    rows, per_member = [], {}
    with Transcript() as transcript:
        for i, scenario in enumerate(family):
            model = MarketModel.from_scenario(scenario, "cpu", torch.float64)
            started = time.perf_counter()
            target = equilibrium_sweep(model).sigma
            sweep_s = time.perf_counter() - started
            residual = float(((round_map(model, target) - target) / target).abs().max())
            plain, plain_s = rounds(model, target, args.rounds, mixed=False)
            mixed, mixed_s = rounds(model, target, args.rounds, mixed=True)
            per_member[i] = {"N": model.n_agents, "K": model.n_steps, "sweep_residual": residual,
                             "sweep_s": sweep_s, "plain": plain, "plain_s": plain_s, "anderson": mixed,
                             "anderson_s": mixed_s}
            rows.append([i, model.n_agents, model.n_steps, f"{residual:.1e}", f"{1e3 * sweep_s:.0f}",
                         reached(plain), f"{1e3 * plain_s:.0f}", reached(mixed), f"{1e3 * mixed_s:.0f}",
                         " ".join(f"{e:.0e}" for e in plain[:4]), " ".join(f"{e:.0e}" for e in mixed[:4])])
            print(" | ".join(map(str, rows[-1])), flush=True)
        converged = {name: sum(reached(v[name]).isdigit() for v in per_member.values())
                     for name in ("plain", "anderson")}
        summary = (f"{len(family)} members: the sweep's fixed-point residual at most "
                   f"{max(v['sweep_residual'] for v in per_member.values()):.1e}, median wall "
                   f"{1e3 * np.median([v['sweep_s'] for v in per_member.values()]):.0f} ms; plain rounds "
                   f"reached {REACHED:g} on {converged['plain']}, Anderson-mixed rounds on {converged['anderson']}")
        print(summary)
    columns = ["member", "N", "K", "sweep residual", "sweep ms", "plain: rounds to 1e-8", "plain ms",
               "anderson: rounds to 1e-8", "anderson ms", "plain errors, rounds 1-4", "anderson errors, rounds 1-4"]
    save_record("outer_schemes", "Outer schemes on the quadratic family: rounds against the backward sweep",
                {"generator_seed": args.seed, "tables": [{"caption": "Outer error = sup_t |sigma - sigma*| / "
                                                                     "sigma* after each round, from sigma = alpha",
                                                          "columns": columns, "rows": rows}],
                 "notes": [summary], "members": per_member, "transcript": transcript.text}, seeds=[], quick=args.quick)


if __name__ == "__main__":
    main()
