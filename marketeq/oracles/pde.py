"""Two agents, any q in (1, 2]: the equilibrium PDE solved on a grid, as an oracle (model.md section 3).

A numerical reference, exact up to the grid: :mod:`marketeq.oracles.pde_grid` solves for agent 1's marginal
benefit ``y(t, phi, w)`` and the price ``p(t, phi, w)``; here they are evaluated on given Brownian paths like
every other oracle: ``phi_{k+1} = phi_k + a(y(t_k, phi_k, W_k)) dt`` (agent 2 trades the opposite),
``sigma = p_w`` at the path's state, ``mu`` from the return identity, ``S_0 = p(0, phibar_1, 0)``. The rates
are by default those of the K-step game that runs and the equilibrium gap play against this market
(:func:`~marketeq.oracles.pde_grid.euler_game_benefit`); ``rates="continuous"`` samples the continuous-time
``a(y(t_k))`` instead (what the Riccati oracle does: the two differ by O(dt)).
``error_estimate`` is the change of sigma_0, mu_0 and S_0 against a grid with about half the points in every
direction: a guide to the error, not a bound (sigma_0 converges slowly in phi, see docs/model.md).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from marketeq.model.brownian import Brownian, brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, simulate
from marketeq.oracles.base import Oracle
from marketeq.oracles.pde_grid import PdeGrid, Problem, Solution, solve_pde
from marketeq.scenario import ScenarioError

CURVE_PATHS = 1000  # paths of the internal seeded set behind sigma_curve
RATES = ("euler", "continuous")  # agent 1's rate on the paths: from the K-step game's benefit, or from y(t_k)


def problem_of(model: MarketModel) -> Problem:
    """The floats of a two-agent market; ValueError (one line) when the PDE does not cover it."""
    if model.n_agents != 2:
        raise ValueError(f"the PDE reference covers two agents, not {model.n_agents}")
    lam = np.broadcast_to(np.asarray(torch.as_tensor(model.cost.lam).cpu(), dtype=float), (2,))
    if lam.min() <= 0:
        raise ValueError("the PDE reference needs trading costs lambda > 0 for both agents")
    as_pair = lambda v: tuple(float(x) for x in v.detach().cpu())  # noqa: E731
    return Problem(float(model.alpha), float(model.beta), float(model.supply), float(model.horizon),
                   int(model.n_steps), as_pair(model.gamma), as_pair(model.xi),
                   (float(lam[0]), float(lam[1])), float(model.cost.q))


def parse_grid(values: list[int] | tuple[int, ...]) -> PdeGrid:
    """``NPHI NW [SUBSTEPS]`` (the CLI's ``--grid``) as a grid; ScenarioError (one line) when unusable."""
    values = list(values)
    ok = len(values) in (2, 3) and values[0] >= 21 and values[1] >= 9 and (len(values) == 2 or values[2] >= 1)
    if not ok:
        raise ScenarioError("--grid", " ".join(map(str, values)),
                            "give NPHI NW [SUBSTEPS]: NPHI >= 21 points in phi, NW >= 9 in w, SUBSTEPS >= 1 "
                            "PDE steps per scenario step (e.g. --grid 401 31 4)")
    return PdeGrid(*values)


@lru_cache(maxsize=4)
def cached_solution(problem: Problem, grid: PdeGrid) -> Solution:
    """Solutions are reused: a run, its metrics table and the GUI overlay ask for the same one."""
    return solve_pde(problem, grid)


class PdeOracle(Oracle):
    """The two-agent equilibrium from its PDE on a ``grid`` (default :class:`PdeGrid`)."""

    name = "pde"

    def __init__(self, model: MarketModel, grid: PdeGrid | None = None, rates: str = "euler") -> None:
        super().__init__(model)
        if rates not in RATES:
            raise ValueError(f"rates = {rates!r}: use one of {', '.join(RATES)}")
        self.problem = problem_of(model)
        self.grid = grid or PdeGrid()
        self.rates = rates
        self.solution = cached_solution(self.problem, self.grid)
        self._curve: np.ndarray | None = None

    @property
    def label(self) -> str:
        """What this reference is: its grid (as solved) and the estimated error."""
        g, err = self.solution.grid, self.error_estimate()
        return (f"numerical reference (PDE), grid {g.n_phi} phi x {g.n_w} w x "
                f"{g.substeps * self.problem.n_steps} steps; change against a coarser grid: "
                f"sigma_0 {err['sigma0']:.1e}, mu_0 {err['mu0']:.1e}, S_0 {err['S0']:.1e}")

    def _x(self, D: torch.Tensor, W: torch.Tensor) -> np.ndarray:
        """Agent 1's distance to its frictionless holding, x = phi^1 - phibar^1 + k W."""
        return (D[..., 0] + self.problem.k * W).detach().cpu().double().numpy()

    def paths(self, brownian: Brownian) -> Paths:
        m, sol = self.model, self.solution
        brownian = brownian.to(m.device, m.dtype)

        benefit = sol.y if self.rates == "continuous" else sol.y_euler

        def rates(k: int, D: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
            y = sol.at(benefit, k, self._x(D, W), W.detach().cpu().double().numpy())
            r1 = torch.as_tensor(self.problem.rate(y), dtype=D.dtype, device=D.device)
            return torch.stack([r1, -r1], dim=-1)

        def sigma(D: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
            x, w = self._x(D, W), W.detach().cpu().double().numpy()
            out = np.stack([sol.at(sol.sigma, k, x[:, k], w[:, k]) for k in range(m.n_steps + 1)], axis=1)
            return torch.as_tensor(out, dtype=W.dtype, device=W.device)

        return simulate(m, brownian, rates, sigma=sigma,
                        mu=lambda D, W, phi, sigma_t: m.return_identity(sigma_t, phi, W), s0=self.s0)

    def sigma_curve(self, t: np.ndarray) -> np.ndarray:
        """The mean volatility over an internal seeded set of paths (sigma is random when q < 2)."""
        m = self.model
        if self._curve is None:
            test = brownian_test_set(0, CURVE_PATHS, m.n_steps, m.dt, m.device, m.dtype)
            self._curve = self.paths(test).sigma.mean(0).detach().cpu().double().numpy()
        return np.interp(np.asarray(t, dtype=float), m.times.detach().cpu().double().numpy(), self._curve)

    @property
    def s0(self) -> float:
        return self.solution.s0

    def error_estimate(self) -> dict[str, float]:
        """|change| of sigma_0, mu_0 = gbar s sigma_0^2 and S_0 against the coarser grid."""
        coarse = cached_solution(self.problem, self.grid.coarser())
        out = {}
        for name, sol in (("fine", self.solution), ("coarse", coarse)):
            s = float(sol.at(sol.sigma, 0, np.zeros(1), np.zeros(1))[0])
            out[name] = (s, self.problem.gbar * self.problem.supply * s * s, sol.s0)
        return {key: abs(a - b) for key, a, b in zip(("sigma0", "mu0", "S0"), out["fine"], out["coarse"],
                                                      strict=True)}
