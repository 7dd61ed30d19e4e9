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

Three disjoint sets of paths: the best responses train on the first; every ``VALIDATE_EVERY`` iterations each
agent's iterate is scored on the second, and the one kept is the best by its validation gain less one
standard error (iteration 0, the run's own policy, scores 0); the gap is measured on the third. Why the
selection: at an exact equilibrium the run's policy is already the best response, so any trained deviation -
fitted to finite training paths with a noisy optimiser - loses out of sample. Measured on E2 at the PDE
reference (3000 training paths, 200 iterations): the final iterate gained +1.0e-4 on its training paths and
lost 1.9e-4 +- 0.7e-4 on the test paths (-2.7 standard errors; -2.9 for q = 3/2); with four times the training
paths -0.2e-4 +- 0.3e-4. The kept policy is chosen without the test paths, so the reported gap is an unbiased
estimate of what it gains: a lower bound of the true gap, zero at an exact equilibrium up to the Euler
discretisation. On the test paths the agent's ``J_n`` under the kept policy and under the run's policy are
compared path by path; the paired differences give the standard errors.
"""

from __future__ import annotations

import copy
import math
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
VALIDATE_EVERY = 10  # training iterations between two scores of the iterates on the validation paths
TRAIN_FACTOR = 4  # fresh training paths per stored test path, when the market is rebuilt
CONFIDENCE = 1.0  # standard errors an iterate's validation gain must clear to be kept
MAX_NUMBERS = 5e7  # float64 numbers (400 MB) the fresh training paths may hold: more paths for fewer agents


def best_response_gap(model: MarketModel, train: Paths, evaluate: Paths, iterations: int = DEFAULT_ITERATIONS,
                      *, validate: Paths | None = None, select: bool = True, hidden: int | None = None,
                      lr: float = 1e-2, seed: int = 0, agents: list[str] | None = None,
                      training: str = "given paths",
                      progress: Callable[[int, int], None] | None = None) -> GapReport:
    """Train every agent's best response on ``train``, keep an iterate per agent by its gain on ``validate``
    and measure the gap on ``evaluate``.

    All are paths of the same market (numpy or tensors); everything runs in float64 on the model's device.
    ``validate`` defaults to the last quarter of ``train`` (which then trains on the rest); ``select=False``
    keeps the last iterate instead (no validation: what the gap was before the selection, for comparisons).
    ``hidden``: width of the nonlinear part; by default 16 for power costs and none for quadratic costs,
    whose best response to a market linear in the state is linear. ``progress(done, iterations)`` is called
    after each training iteration.
    """
    if validate is None and select:
        n = int(np.asarray(train.W).shape[0])
        if n < 4:
            raise ValueError(f"{n} training paths: too few to keep a quarter for validation")
        train, validate = train.select(slice(0, n - n // 4)), train.select(slice(n - n // 4, None))
    with torch_threads(1):
        return _best_response_gap(model, train, validate if select else None, evaluate, iterations, hidden,
                                  lr, seed, agents, training, progress)


def _best_response_gap(model: MarketModel, train: Paths, validate: Paths | None, evaluate: Paths,
                       iterations: int, hidden: int | None, lr: float, seed: int, agents: list[str] | None,
                       training: str, progress: Callable[[int, int], None] | None = None) -> GapReport:
    started = time.perf_counter()
    model = _float64(model)
    hidden = (0 if model.cost.q == 2.0 else 16) if hidden is None else hidden
    scales = Scales(model)
    tr, ev = RecordedMarket(model, train, scales), RecordedMarket(model, evaluate, scales)
    va = None if validate is None else RecordedMarket(model, validate, scales)
    generator = torch.Generator().manual_seed(stream_seed(seed, "gap"))
    policy = BestResponse(model.n_agents, tr.n_features(), model.n_steps, hidden, generator, torch.float64,
                          model.device)
    kept = copy.deepcopy(policy)  # per agent, the iterate with the best validation score so far
    score = torch.zeros(model.n_agents, dtype=torch.float64, device=model.device)  # iteration 0 scores 0
    selected = np.zeros(model.n_agents, dtype=np.int64)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(iterations, 1), eta_min=0.05 * lr)
    for done in range(1, iterations + 1):
        index = torch.randperm(tr.n_paths, generator=generator)[:MINIBATCH].to(model.device)
        phi, phidot = tr.rollout(policy, index)
        # the agents' parameters are disjoint and Adam scales each one: the plain sum trains each alone
        loss = -tr.utilities(phi, phidot, index).mean(0).sum() / model.horizon
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if va is not None and (done % VALIDATE_EVERY == 0 or done == iterations):
            now = _lower_bound(va, policy)
            better = now > score
            kept.take(policy, better)
            score = torch.where(better, now, score)
            selected[better.cpu().numpy()] = done
        if progress is not None:
            progress(done, iterations)
    if va is None:
        kept, selected = policy, np.full(model.n_agents, iterations, dtype=np.int64)
    best_J, own_J = (x.cpu().numpy() for x in _utilities(ev, kept))
    idle_J = _idle(ev).cpu().numpy()
    gap, gap_se = mean_se(best_J - own_J)
    gain, gain_se = mean_se(own_J - idle_J)
    total_gap, total_gap_se = mean_se((best_J - own_J).sum(-1))
    total_gain, total_gain_se = mean_se((own_J - idle_J).sum(-1))
    names = agents or [f"agent {n + 1}" for n in range(model.n_agents)]
    return GapReport(names, gap, gap_se, own_J.mean(0), best_J.mean(0), gain, gain_se, total_gap,
                     total_gap_se, total_gain, total_gain_se, iterations, tr.n_paths, ev.n_paths, training,
                     time.perf_counter() - started, selected, 0 if va is None else va.n_paths)


@torch.no_grad()
def _utilities(market: RecordedMarket, policy: BestResponse) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N) J_n under ``policy`` and under the recorded rates, over all the market's paths."""
    best, own = [], []
    for chunk in torch.arange(market.n_paths, device=market.p.W.device).split(MINIBATCH):
        phi, phidot = market.rollout(policy, chunk)
        best.append(market.utilities(phi, phidot, chunk))
        own.append(market.utilities(market.p.phi[chunk], market.p.phidot[chunk], chunk))
    return torch.cat(best), torch.cat(own)


@torch.no_grad()
def _idle(market: RecordedMarket) -> torch.Tensor:
    """(B, N) J_n of holding the frictionless phibar_n without trading."""
    out = []
    for chunk in torch.arange(market.n_paths, device=market.p.W.device).split(MINIBATCH):
        phidot = torch.zeros_like(market.p.phidot[chunk])
        out.append(market.utilities(market.model.phibar.expand_as(phidot), phidot, chunk))
    return torch.cat(out)


def _lower_bound(market: RecordedMarket, policy: BestResponse) -> torch.Tensor:
    """(N,) each agent's mean gain over the recorded policy on ``market``'s paths less CONFIDENCE standard
    errors."""
    best, own = _utilities(market, policy)
    diff = best - own
    return diff.mean(0) - CONFIDENCE * diff.std(0) / math.sqrt(max(diff.shape[0], 1))


def _float64(model: MarketModel) -> MarketModel:
    if model.dtype == torch.float64:
        return model
    return replace(model, gamma=model.gamma.double(), xi=model.xi.double(), dtype=torch.float64)


# --- a finished run ---------------------------------------------------------------------------------------

MarketFn = Callable[[Brownian], Paths]


def rebuild_market(result: RunResult, model: MarketModel) -> MarketFn | None:
    """A function simulating the run's market and policy on new increments, when it can be rebuilt from the
    result (an oracle by name, a solver from its stored weights) and reproduces the stored test paths."""
    from marketeq.api import SOLVERS, build_solver
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
                # the scenario's own solver: its method and schedule (the adaptive one too)
                solver = build_solver(result.scenario, Runtime(model.device, dtype, result.scenario.run.seed))
            solver.load_weights(result.weights)
            grids = result.metrics.get("convergence/grids")
            if grids is not None and hasattr(solver, "reached"):  # the grids an adaptive run answered from
                solver.reached = int(grids.value)
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
    responses train on fresh paths of the seeded "gap" stream (``train_paths``, default ``TRAIN_FACTOR`` times
    the test set within ``MAX_NUMBERS``), are selected on as many further fresh paths as the test set (within
    the same budget, at least a quarter of it), and are evaluated on all the test paths. Otherwise the test
    paths are split: the first half trains (its last quarter validates), the second half evaluates.
    ``GapReport.training`` says which was done.
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
    validate = None
    if market is not None:
        fits = int(MAX_NUMBERS // ((model.n_steps + 1) * (model.n_agents + 4)))  # phi, phidot, W, mu, sigma
        n_train = train_paths or max(n_stored, min(TRAIN_FACTOR * n_stored, fits))
        n_valid = min(n_stored, max(fits, n_stored // 4))  # past the budget (many agents), a quarter
        source = BrownianSource(stream_seed(seed, "gap"), model.n_steps, model.dt, model.device, model.dtype)
        with torch.no_grad():
            train = market(source.draw(n_train)).numpy()
            validate = market(source.draw(n_valid)).numpy()
        evaluate = stored
        training = (f"{n_train} fresh paths (seeded 'gap' stream) of the rebuilt market, the iterate kept on "
                    f"{n_valid} more")
    else:
        if n_stored < 8:
            raise ValueError(f"the run has {n_stored} test paths: too few to split into training, validation "
                             "and test")
        half = n_stored // 2
        train, evaluate = stored.select(slice(0, half)), stored.select(slice(half, None))
        training = (f"first {half} of the {n_stored} stored test paths (market not rebuilt; the last "
                    f"{half // 4} of them keep the iterate)")
    return best_response_gap(model, train, evaluate, iterations, validate=validate, hidden=hidden, seed=seed,
                             agents=list(result.scenario.agent_names), training=training, progress=progress)
