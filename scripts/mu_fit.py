"""How well a finished run's mu network fits the return the link solves, step by step.

    python scripts/mu_fit.py results/compare_e3_seed0.h5 [--method rlink] [--paths 8192] [--steps 20,45,75,95]

Rebuilds the run's reinforcement-link solver from its stored weights, rolls the agents out on fresh paths,
solves the link for mu there (as the market phase does) and prints, at the chosen steps, the share of that
return's variance across paths explained by (a) the run's mu network and (b) a small MLP of the state fitted
to that one step on half the paths and scored on the other half. (b) says how much of the solved return is a
function of the state at all; the difference is what the mu network misses.
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from marketeq.api import SOLVERS
from marketeq.hdf5 import read_result
from marketeq.runtime import Runtime
from marketeq.solvers.implied import implied_mu
from marketeq.solvers.networks import mlp

FIT_ITERATIONS = 2000


def explained(target: Tensor, estimate: Tensor) -> float:
    """1 - var(target - estimate) / var(target)."""
    return 1.0 - float((target - estimate).var() / target.var())


def step_mlp_score(state: Tensor, target: Tensor, seed: int) -> float:
    """Out-of-sample explained variance of a 128x128 tanh MLP of the state, fitted on the first half."""
    torch.manual_seed(seed)
    half = state.shape[0] // 2
    net = mlp(state.shape[1], [128, 128], 1, zero_last=False)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, y = state[:half], target[:half, None]
    for _ in range(FIT_ITERATIONS):
        loss = (net(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return explained(target[half:], net(state[half:]).squeeze(-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", help="an HDF5 result or comparison file of an rlink run with mu learned")
    parser.add_argument("--method", default=None, help="the method inside a comparison file (e.g. rlink)")
    parser.add_argument("--paths", type=int, default=8192)
    parser.add_argument("--steps", default="20,45,75,95")
    args = parser.parse_args()
    torch.set_num_threads(1)

    result = read_result(args.result, args.method)
    if result.solver != "rlink" or not result.weights:
        raise SystemExit(f"error: {args.result} holds a {result.solver!r} run without rlink weights")
    seed = result.scenario.run.seed
    solver = SOLVERS["rlink"](result.scenario, Runtime(torch.device("cpu"), torch.float32, seed))
    solver.load_weights(result.weights)
    if solver.mu_known or solver.mu_implied:
        raise SystemExit("error: the run has no mu network (solver.mu_mode is not 'learned')")
    model = solver.model
    with torch.no_grad():
        paths = solver.noise.draw(args.paths)
        phi, _ = solver._rollout(paths.W)
        sigma = solver.market.sigma(model.times).expand(paths.W.shape)
        solved = implied_mu(model, sigma, phi, paths.W, solver._projection(phi, paths.W))
        network = solver._market_paths(phi, paths.W)[0]
        state = solver.market.scales.state(phi - model.phibar, paths.W)

    print(f"{args.result}: {args.paths} fresh paths, seed {seed}")
    print("step      t   sd(solved mu)   mu network   one-step MLP of the state")
    for k in (int(s) for s in args.steps.split(",")):
        by_network = explained(solved[:, k], network[:, k])
        by_step_mlp = step_mlp_score(state[:, k], solved[:, k], seed)
        print(f"{k:4d} {float(model.times[k]):6.3f} {float(solved[:, k].std()):13.3f} "
              f"{by_network:12.3f} {by_step_mlp:15.3f}")


if __name__ == "__main__":
    main()
