"""Regenerate marketeq/data/leading_order_g.npz: the function g of the leading-order approximation.

For each q the boundary-value problem is solved with scipy's collocation solver (marketeq.oracles.gfunction)
and checked three ways, printed as a table:

- the residual of the ODE on the stored grid, from the solver's own g'' and from finite differences of g';
- the match to the asymptote -A x^a at the end of the table (and halfway, to see it decay like x^-2);
- g'(0) against an independent shooting method (bisection on the slope with a stiff Radau integrator);
- for q = 2, the exact solution g(x) = -2x.

The file holds plain arrays only: q (M,), x (n,), g and gp (M, n), and per q the checks gp0, gp0_shooting,
max_residual, max_residual_fd, asymptote_mismatch, asymptote_mismatch_half.

    python3 scripts/make_g_table.py            # about two minutes on two cores (the shooting dominates)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's marketeq, not an installed one
from marketeq.files import atomic_path  # noqa: E402
from marketeq.oracles.gfunction import TABLE, asymptote, shoot_gp0, solve_g

Q_VALUES = (1.1, 1.25, 1.5, 1.75, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=TABLE)
    parser.add_argument("--q", type=float, nargs="+", default=list(Q_VALUES))
    args = parser.parse_args()

    solutions, shots = [], []
    print(f"{'q':>5} {'g(0)':>5} {'g_prime(0) bvp':>16} {'shooting':>16} {'max|res|':>9} {'fd |res|':>9} "
          f"{'asym x_end':>10} {'asym x_end/2':>12} {'s':>5}")
    for q in args.q:
        started = time.perf_counter()
        sol = solve_g(q)
        shot = shoot_gp0(q)  # for q = 2 the exact answer is g = -2x
        half = len(sol.x) // 2
        mismatch_half = float(sol.g[half] / asymptote(sol.x[half], q) - 1.0)
        solutions.append((sol, mismatch_half))
        shots.append(shot)
        print(f"{q:5.2f} {sol.g[0]:5.1f} {sol.gp0:16.10f} {shot:16.10f} {sol.max_residual:9.1e} "
              f"{sol.max_residual_fd:9.1e} {sol.asymptote_mismatch:10.2e} {mismatch_half:12.2e} "
              f"{time.perf_counter() - started:5.1f}")
        if abs(sol.gp0 - shot) > 1e-7:
            raise SystemExit(f"q = {q}: collocation and shooting disagree on g'(0)")
        if q == 2.0 and np.abs(sol.g + 2.0 * sol.x).max() > 1e-8:
            raise SystemExit("q = 2: the solution is not g = -2x")

    x = solutions[0][0].x
    arrays = {
        "q": np.array(args.q, dtype=float),
        "x": x,
        "g": np.stack([s.g for s, _ in solutions]),
        "gp": np.stack([s.gp for s, _ in solutions]),
        "gp0": np.array([s.gp0 for s, _ in solutions]),
        "gp0_shooting": np.array(shots),
        "max_residual": np.array([s.max_residual for s, _ in solutions]),
        "max_residual_fd": np.array([s.max_residual_fd for s, _ in solutions]),
        "asymptote_mismatch": np.array([s.asymptote_mismatch for s, _ in solutions]),
        "asymptote_mismatch_half": np.array([m for _, m in solutions]),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.output, suffix=".tmp.npz") as tmp:  # numpy adds ".npz" to a name without it
        np.savez_compressed(tmp, **arrays)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB, x in [0, {x[-1]:g}], "
          f"{len(x)} points)")


if __name__ == "__main__":
    main()
