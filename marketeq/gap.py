"""The equilibrium gap (exploitability) of a finished run (model.md section 5).

For every agent n a fresh best response is trained against the market processes ``(mu_k, sigma_k)`` recorded
along the paths. The deviating agent is a price taker (it does not move mu or sigma) and there is no clearing
penalty: it simply maximises its own ``J_n``. The gap is how much more it gets than under the run's policy.

Information: mu_k depends on the state (t, D_t of all agents, W_t), so the best response may look at
``t_k``, ``W_k``, the recorded market state on its path at step k (``D_k``, ``mu_k``, ``sigma_k`` and its own
recorded rate, all functions of the state at k) and its own deviating holding, never at later values. It is
``rate = recorded rate + correction``, the correction starting at zero, so training starts from the run's own
policy. The correction is a linear feedback on these inputs with gains piecewise linear in time (the
linear-quadratic case needs no more) plus, for power costs, a small tanh network of them; one per agent
(``marketeq.best_response``).

The policy is trained on one set of paths and evaluated on another, so the reported gap is an unbiased
estimate of what that (possibly sub-optimal) best response gains: a lower bound of the true gap, zero in
expectation at an exact equilibrium up to the Euler discretisation. On the evaluation paths the agent's
``J_n`` under the best response and under the run's policy are compared path by path; the paired differences
give the standard errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from marketeq.best_response import BestResponse, RecordedMarket
from marketeq.model.brownian import Brownian, BrownianSource, stream_seed
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths
from marketeq.results import GapReport, RunResult, mean_se
from marketeq.runtime import torch_threads
from marketeq.solvers.networks import Scales

DEFAULT_ITERATIONS = 200
MINIBATCH = 512  # paths per training iteration and per evaluation chunk


def best_response_gap(model: MarketModel, train: Paths, evaluate: Paths, iterations: int = DEFAULT_ITERATIONS,
                      *, hidden: int | None = None, lr: float = 1e-2, seed: int = 0,
                      agents: list[str] | None = None,
                      training: str = "given paths",
                      progress: Callable[[int, int], None] | None = None) -> GapReport:
    """Train every agent's best response on ``train`` and measure the gap on ``evaluate``.

    Both are paths of the same market (numpy or tensors); everything runs in float64 on the model's device.
    ``hidden``: width of the nonlinear part; by default 16 for power costs and none for quadratic costs,
    whose best response to a market linear in the state is linear. ``progress(done, iterations)`` is called
    after each training iteration.
    """
    with torch_threads(1):
        return _best_response_gap(model, train, evaluate, iterations, hidden, lr, seed, agents, training,
                                  progress)


def _best_response_gap(model: MarketModel, train: Paths, evaluate: Paths, iterations: int, hidden: int | None,
                       lr: float, seed: int, agents: list[str] | None, training: str,
                       progress: Callable[[int, int], None] | None = None) -> GapReport:
    started = time.perf_counter()
    model = _float64(model)
    hidden = (0 if model.cost.q == 2.0 else 16) if hidden is None else hidden
    scales = Scales(model)
    tr, ev = RecordedMarket(model, train, scales), RecordedMarket(model, evaluate, scales)
    generator = torch.Generator().manual_seed(stream_seed(seed, "gap"))
    policy = BestResponse(model.n_agents, tr.n_features(), model.n_steps, hidden, generator, torch.float64,
                          model.device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(iterations, 1), eta_min=0.05 * lr)
    for done in range(iterations):
        index = torch.randperm(tr.n_paths, generator=generator)[:MINIBATCH].to(model.device)
        phi, phidot = tr.rollout(policy, index)
        # the agents' parameters are disjoint and Adam scales each one: the plain sum trains each alone
        loss = -tr.utilities(phi, phidot, index).mean(0).sum() / model.horizon
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress is not None:
            progress(done + 1, iterations)
    best, own, idle = [], [], []
    with torch.no_grad():
        for chunk in torch.arange(ev.n_paths, device=model.device).split(MINIBATCH):
            phi, phidot = ev.rollout(policy, chunk)
            best.append(ev.utilities(phi, phidot, chunk))
            phi, phidot = ev.p.phi[chunk], ev.p.phidot[chunk]
            own.append(ev.utilities(phi, phidot, chunk))
            idle.append(ev.utilities(model.phibar.expand_as(phi), torch.zeros_like(phidot), chunk))
    best_J, own_J, idle_J = (torch.cat(x).cpu().numpy() for x in (best, own, idle))
    gap, gap_se = mean_se(best_J - own_J)
    gain, gain_se = mean_se(own_J - idle_J)
    total_gap, total_gap_se = mean_se((best_J - own_J).sum(-1))
    total_gain, total_gain_se = mean_se((own_J - idle_J).sum(-1))
    names = agents or [f"agent {n + 1}" for n in range(model.n_agents)]
    return GapReport(names, gap, gap_se, own_J.mean(0), best_J.mean(0), gain, gain_se, total_gap,
                     total_gap_se, total_gain, total_gain_se, iterations, tr.n_paths, ev.n_paths, training,
                     time.perf_counter() - started)


def _float64(model: MarketModel) -> MarketModel:
    if model.dtype == torch.float64:
        return model
    return replace(model, gamma=model.gamma.double(), xi=model.xi.double(), dtype=torch.float64)


# --- a finished run ---------------------------------------------------------------------------------------

MarketFn = Callable[[Brownian], Paths]


def rebuild_market(result: RunResult, model: MarketModel) -> MarketFn | None:
    """A function simulating the run's market and policy on new increments, when it can be rebuilt from the
    result (an oracle by name, a solver from its stored weights) and reproduces the stored test paths."""
    from marketeq.api import SOLVERS
    from marketeq.oracles import ORACLES
    from marketeq.runtime import Runtime

    simulate_fn: MarketFn | None = None
    if result.solver.startswith("oracle:"):
        name = result.solver.removeprefix("oracle:")
        cls = next((c for key, c in ORACLES.items() if name in (key, c.name)), None)
        if cls is not None:
            simulate_fn = cls(model).paths
    elif result.solver in SOLVERS and result.weights:
        dtype = torch.float32 if result.provenance.get("dtype") == "float32" else torch.float64
        try:
            with torch.random.fork_rng(devices=[]):  # building networks must not move the global generator
                solver = SOLVERS[result.solver](result.scenario, Runtime(model.device, dtype,
                                                                         result.scenario.run.seed))
            solver.load_weights(result.weights)
        except (AttributeError, KeyError, RuntimeError, ValueError):
            return None
        def simulate_fn(brownian: Brownian) -> Paths:
            return solver.evaluate(brownian.to(solver.model.device, solver.model.dtype))
    if simulate_fn is None or result.paths is None or not _reproduces(simulate_fn, result.paths, model):
        return None
    return simulate_fn


def _reproduces(simulate_fn: MarketFn, stored: Paths, model: MarketModel, n_paths: int = 64) -> bool:
    """Whether the rebuilt market gives the stored holdings and market on the first stored increments."""
    dW = torch.as_tensor(np.asarray(stored.dW)[:n_paths], dtype=torch.float64, device=model.device)
    brownian = Brownian.from_increments(dW)
    with torch.no_grad():
        again = simulate_fn(brownian.to(model.device, torch.float64)).numpy()
    for name in ("phi", "mu", "sigma"):
        ref, new = np.asarray(getattr(stored, name))[:n_paths], getattr(again, name)
        if new.shape != ref.shape or not np.allclose(new, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max()):
            return False
    return True


def result_gap(result: RunResult, iterations: int = DEFAULT_ITERATIONS, *, train_paths: int | None = None,
               device: str = "cpu", hidden: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> GapReport:
    """The equilibrium gap of a finished run, evaluated on its stored test paths.

    When the run's market can be rebuilt (oracle results; solvers from their stored weights) the best
    responses train on fresh paths of the seeded "gap" stream (``train_paths``, default as many as the test
    set) and are evaluated on all the test paths. Otherwise the test paths are split: the first half trains,
    the second half evaluates. ``GapReport.training`` says which was done.
    """
    if result.paths is None:
        raise ValueError(f"the run has no test-set paths (status {result.status}): nothing to evaluate")
    if not all(np.isfinite(np.asarray(getattr(result.paths, name))).all() for name in ("phi", "mu", "sigma")):
        raise ValueError(f"the run's test-set paths are not finite (status {result.status}): no market to "
                         "best-respond to")
    model = MarketModel.from_scenario(result.scenario, device, torch.float64)
    seed, stored = result.scenario.run.seed, result.paths
    n_stored = int(np.asarray(stored.W).shape[0])
    market = rebuild_market(result, model)
    if market is not None:
        n_train = train_paths or n_stored
        source = BrownianSource(stream_seed(seed, "gap"), model.n_steps, model.dt, model.device, model.dtype)
        with torch.no_grad():
            train = market(source.draw(n_train)).numpy()
        evaluate, training = stored, f"{n_train} fresh paths (seeded 'gap' stream) of the rebuilt market"
    else:
        if n_stored < 4:
            raise ValueError(f"the run has {n_stored} test paths: too few to split into training and test")
        half = n_stored // 2
        train, evaluate = stored.select(slice(0, half)), stored.select(slice(half, None))
        training = f"first {half} of the {n_stored} stored test paths (market not rebuilt)"
    return best_response_gap(model, train, evaluate, iterations, hidden=hidden, seed=seed,
                             agents=list(result.scenario.agent_names), training=training, progress=progress)
