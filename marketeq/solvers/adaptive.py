"""The reinforcement-link solver with its adaptive schedule (the default): rounds of the agents' problem
solved to optimality against a frozen volatility, the market solved exactly on their roll-out, the volatility
mixed across rounds, until the round-to-round changes and the equilibrium residuals on held-out paths fall
below ``solver.tolerance`` or the budget (``max_rounds``, ``max_minutes``) is spent.

The reasons for each piece, and what they measured, are in :mod:`marketeq.solvers.fixed_point`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from marketeq.model.brownian import Brownian, BrownianSource, stream_seed
from marketeq.model.rollout import Paths, RatesFn, price_path, roll_holdings, simulate
from marketeq.runtime import Runtime
from marketeq.scenario import Scenario
from marketeq.solvers.base import Solver
from marketeq.solvers.fixed_point import (
    FIELDS,
    AndersonMixer,
    RoundCheck,
    fit_volatility,
    interval_sigma,
    welfare,
)
from marketeq.solvers.implied import implied_mu
from marketeq.solvers.losses import StateProjection, clearing_error, implied_rates, terminal_error
from marketeq.solvers.networks import PolicyNet
from marketeq.solvers.state import State, to_numpy

LBFGS_CHUNK = 25  # objective evaluations per agents' iteration (a fresh L-BFGS each, so resumes are exact)
MAX_CHUNKS = 40  # agents' iterations per round at most
AGENTS_RTOL = 1e-8  # an agents' phase ends when an iteration improves the objective by less than this share
MARKET_SWEEPS = 30  # return <-> volatility sweeps of the exact market solve, at most
VALIDATION_PATHS = 1024
SIGMA_FLOOR = 1e-3  # in units of alpha: a volatility is positive


class GridMarket(nn.Module):
    """The market of the adaptive schedule: the volatility on the time grid and the initial price."""

    def __init__(self, n_points: int, alpha: float, s0: float) -> None:
        super().__init__()
        self.register_buffer("sigma", torch.full((n_points,), float(alpha)))
        self.register_buffer("s0", torch.tensor(float(s0)))


class AdaptiveLinkSolver(Solver):
    """Self-converging reinforcement link: agents' optimum, exact market, Anderson-mixed volatility."""

    name = "rlink"

    def __init__(self, scenario: Scenario, runtime: Runtime) -> None:
        super().__init__(scenario, runtime)
        m, settings = self.model, scenario.solver
        nonlinear = m.cost.q != 2.0
        self.policy = PolicyNet(m, settings.agents_hidden, nonlinear).to(runtime.device, runtime.dtype)
        self.market = GridMarket(m.n_steps + 1, m.alpha, m.frictionless_s0).to(runtime.device, runtime.dtype)
        # Fixed paths make the agents' objective a fixed function (L-BFGS needs one) and the round map smooth.
        source = BrownianSource(stream_seed(runtime.seed, "train"), m.n_steps, m.dt, runtime.device,
                                runtime.dtype)
        self.train_paths = source.draw(settings.batch_size)
        self.valid_paths = BrownianSource(stream_seed(runtime.seed, "valid"), m.n_steps, m.dt, runtime.device,
                                          runtime.dtype).draw(VALIDATION_PATHS)
        self.identity = scenario.solver.mu_mode == "known" or m.cost.q == 2.0 or (
            m.n_agents == 2 and m.cost.common_lam is not None)
        self.mixer = AndersonMixer(positive=True)
        self.checks: list[RoundCheck] = []
        self.verdict = ""
        self._last_valid: tuple[np.ndarray, np.ndarray] | None = None  # sigma and mean mu of the last round

    # --- the agents ------------------------------------------------------------------------------------
    def rates(self) -> RatesFn:
        """Zero-sum rates: clearing is part of the policy, not a penalty."""
        policy, times = self.policy, self.model.times
        gains = policy.grid_gains(times)

        def rates(k: int, D: Tensor, W: Tensor) -> Tensor:
            r = policy(times[k], D, W, gains[k])
            return r - r.mean(-1, keepdim=True)

        return rates

    def _objective(self) -> Tensor:
        b = self.train_paths
        phi, phidot = roll_holdings(self.model, b.W, self.rates())
        scale = self.model.n_agents * self.model.horizon
        return -welfare(self.model, self.market.sigma, phi, phidot, b.W).mean() / scale

    def _agents_step(self) -> dict[str, Tensor]:
        params = list(self.policy.parameters())
        optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=LBFGS_CHUNK, history_size=LBFGS_CHUNK,
                                      tolerance_grad=1e-12, tolerance_change=1e-14,
                                      line_search_fn="strong_wolfe")
        start = [p.detach().clone() for p in params]

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = self._objective()
            loss.backward()
            return loss

        before = float(optimizer.step(closure))  # L-BFGS returns the objective at its starting point
        with torch.no_grad():
            after = self._objective()
            if not bool(torch.isfinite(after)) or float(after) > before:
                # A line search that left the concave problem's basin (seen as NaN on a two-agent scenario):
                # keep the last good policy and end the phase there.
                for param, value in zip(params, start, strict=True):
                    param.copy_(value)
                after = torch.tensor(before, dtype=after.dtype)
        improvement = (before - float(after)) / max(abs(before), 1e-30)
        done = improvement < AGENTS_RTOL
        return {"agents/loss": after, "agents/improvement": torch.tensor(improvement),
                "phase/done": torch.tensor(float(done))}

    # --- the market ------------------------------------------------------------------------------------
    def link_mu(self, sigma: Tensor, phi: Tensor, W: Tensor) -> Tensor:
        """(B, K+1) the return at which the agents' implied rates clear (the reinforcement link)."""
        m = self.model
        sigma_paths = sigma.expand(W.shape)
        if self.identity:
            return m.return_identity(sigma_paths, phi, W)
        return implied_mu(m, sigma_paths, phi, W, self._projection(phi, W))

    def _projection(self, phi: Tensor, W: Tensor) -> StateProjection:
        return StateProjection.along(self.model, self.policy.scales, phi, W)

    @torch.no_grad()
    def _market_step(self) -> dict[str, Tensor]:
        m, b = self.model, self.train_paths
        phi, _ = roll_holdings(m, b.W, self.rates())
        sigma = self.market.sigma.double()
        inner = AndersonMixer(positive=True)
        s0 = self.market.s0.double()
        for _ in range(MARKET_SWEEPS):
            mu = self.link_mu(sigma.to(m.dtype), phi, b.W)
            fitted, s0 = fit_volatility(m, mu, b.W, b.dW)
            change = float((fitted - sigma).abs().max())
            sigma = inner.update(sigma, fitted).clamp_min(SIGMA_FLOOR * m.alpha)
            if change < 1e-10 * m.alpha:
                break
        old = self.market.sigma.double()
        new = self.mixer.update(old, sigma).clamp_min(SIGMA_FLOOR * m.alpha)
        self.market.sigma.copy_(new.to(self.market.sigma.dtype))
        self.market.s0.copy_(s0.to(self.market.s0.dtype))
        check = self._check()
        self.checks.append(check)
        logs = {f"market/{key}": torch.tensor(value) for key, value in check.as_dict().items()}
        logs["market/residual"] = torch.tensor(float((sigma - old).abs().max() / m.alpha))
        return logs

    @torch.no_grad()
    def _check(self) -> RoundCheck:
        """The round's changes and residuals on held-out paths."""
        m, b = self.model, self.valid_paths
        paths = self.evaluate(b)
        sigma = paths.sigma[0].double().cpu().numpy()
        mu_mean = paths.mu.mean(0).double().cpu().numpy()
        if self._last_valid is None:  # the first round is measured against the frictionless start
            self._last_valid = (np.full_like(sigma, m.alpha), np.full_like(mu_mean, m.frictionless_mu))
        old_sigma, old_mu = self._last_valid
        sigma_change = float(np.max(np.abs(sigma - old_sigma) / np.abs(old_sigma)))
        mu_scale = max(float(np.abs(old_mu).max()), m.frictionless_mu, 1e-12)
        mu_change = float(np.max(np.abs(mu_mean - old_mu)) / mu_scale)
        self._last_valid = (sigma, mu_mean)
        terminal = float(terminal_error(m, paths.S, paths.W).mean()) / (m.alpha**2 * m.horizon)
        implied = implied_rates(m, paths.mu, paths.sigma, paths.phi, paths.W,
                                self._projection(paths.phi, paths.W))[:, :-1]
        rates = paths.phidot[:, :-1]
        size = rates.pow(2).mean().clamp_min(1e-30)
        foc = float((rates - implied).pow(2).mean() / size)
        link = float(implied.mean(-1).pow(2).mean() / size)
        return RoundCheck(sigma_change, mu_change, terminal, link, float(clearing_error(paths.phidot).mean()),
                          foc)

    def planned(self) -> tuple[int, int]:
        rounds = self.scenario.solver.max_rounds
        return rounds, rounds * (MAX_CHUNKS + 1)

    # --- the schedule ----------------------------------------------------------------------------------
    def _train(self) -> None:
        settings = self.scenario.solver
        tolerance, budget_s = settings.tolerance, settings.max_minutes * 60.0
        for r in range(settings.max_rounds):
            self._iterate(r, "agents", MAX_CHUNKS, lambda i: self._agents_step())
            if not self._iterate(r, "market", 1, lambda i: self._market_step()):
                continue  # a round that a resumed state had finished
            name, ratio = self.checks[-1].worst(tolerance)
            if ratio <= 1.0:
                self.verdict = self._describe("converged", r + 1)
                return
            if self.elapsed_s > budget_s:
                break
        self.verdict = self._describe("budget_exhausted", len(self.checks))

    def _describe(self, verdict: str, rounds: int) -> str:
        check, tol = self.checks[-1], self.scenario.solver.tolerance
        name, ratio = check.worst(tol)
        values = ", ".join(f"{key} {value:.2g}" for key, value in check.as_dict().items())
        if verdict == "converged":
            return f"converged in {rounds} rounds (tolerance {tol:g}; {values})"
        return (f"budget_exhausted after {rounds} rounds, {self.elapsed_s:.0f} s: {name} is {ratio:.3g} times "
                f"its tolerance ({values})")

    def convergence(self) -> dict[str, float]:
        """The verdict and the last round's measures, as metrics ``convergence/*``."""
        out = {"convergence/converged": float(self.verdict.startswith("converged")),
               "convergence/rounds": float(len(self.checks))}
        if self.checks:
            out.update({f"convergence/{key}": value for key, value in self.checks[-1].as_dict().items()})
        return out

    # --- saved state -----------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy, "market": self.market}

    def _extra_state(self) -> State:
        state: State = {"mixer": {k: to_numpy(v) for k, v in self.mixer.state().items()},
                        "checks": np.array([list(c.as_dict().values()) for c in self.checks]).reshape(-1, len(FIELDS))}
        if self._last_valid is not None:
            state["last_sigma"], state["last_mu"] = self._last_valid
        return state

    def _load_extra_state(self, state: State) -> None:
        self.mixer.load({k: torch.as_tensor(np.asarray(v)) for k, v in state.get("mixer", {}).items()})
        rows = np.asarray(state.get("checks", np.zeros((0, len(FIELDS))))).reshape(-1, len(FIELDS))
        self.checks = [RoundCheck(*map(float, row)) for row in rows]
        last = state.get("last_sigma")
        self._last_valid = None if last is None else (np.asarray(last), np.asarray(state["last_mu"]))

    # --- results ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, brownian: Brownian) -> Paths:
        m = self.model
        sigma = self.market.sigma
        paths = simulate(m, brownian, rates=self.rates(), sigma=lambda D, W: sigma,
                         mu=lambda D, W, phi, s: self.link_mu(sigma, phi, W), s0=self.market.s0)
        paths.S = price_path(m, paths.mu, interval_sigma(paths.sigma), brownian.dW, self.market.s0)
        return paths
