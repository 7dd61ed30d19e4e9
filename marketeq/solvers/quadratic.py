"""The equilibrium of the time-discretised game when trading costs are quadratic, exactly.

Against a frozen volatility the price-taking agents of a cleared market solve the planner's problem
(:mod:`marketeq.solvers.fixed_point`). For ``q = 2`` on the time grid that problem is linear-quadratic in the
state ``x = (D, W, 1)`` with the zero-sum rates as control: its optimum is a linear feedback from one backward
Riccati recursion (:func:`best_response`), with nothing to train.

The round map "volatility -> agents' best response -> market" is causal: the volatility the market implies at
``t_i`` depends on the volatility the agents faced only after ``t_i`` (the agents' gains at ``t_l`` look at
``sigma`` from ``t_{l+1}`` on, the return's sensitivity to ``dW_k`` at ``t_l > t_k`` on the gains in between).
So the rounds' fixed point is reached by backward substitution, and :func:`equilibrium_sweep` does the
substitution in one backward pass that alternates a Riccati step of the agents with a step of the market's
volatility equation (the Volterra pass of :func:`marketeq.solvers.fixed_point.volatility_pass`, its sums over
later returns accumulated through an adjoint of the holdings' sensitivities). Cost ``O(K N^3)``.

Why not rounds of trained agents here: the market's Volterra equation amplifies any error of the agents' rates
by up to ``exp(|X| T)`` (``X`` the return identity's loading on ``W``), and forward rounds amplify the
transient likewise. Measured on a weak-friction scenario (lambda 2.5e-3, ``X T = 9``, 69 steps): the
volatility implied by a trained optimum, faced with the exact volatility, was 93% below it at t_0, and rounds
of the exact best response overflowed in their second round; the discrete game's equilibrium itself is
well-behaved (9% from the continuous one, first order in the step), and the sweep finds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from marketeq.model.market import MarketModel
from marketeq.solvers.fixed_point import first_point, identity_exposure


@dataclass
class _Problem:
    """The agents' linear-quadratic problem on a grid, in float64."""

    model: MarketModel
    gamma: Tensor
    xi: Tensor
    phibar: Tensor
    basis: Tensor  # (N, N-1) orthonormal basis of the zero-sum rates
    control_cost: Tensor  # (N-1, N-1) (dt/2) Q' Lambda Q

    @classmethod
    def of(cls, model: MarketModel, device: torch.device) -> _Problem:
        n, f64 = model.n_agents, dict(dtype=torch.float64, device=device)
        centring = torch.eye(n, **f64) - 1.0 / n
        basis = torch.linalg.svd(centring).U[:, : n - 1]  # the centring's range: rates that sum to zero
        lam = torch.as_tensor(model.cost.lam, **f64).expand(n)
        return cls(model, model.gamma.to(**f64), model.xi.to(**f64), model.phibar.to(**f64), basis,
                   0.5 * model.dt * basis.T @ (lam[:, None] * basis))

    def stage(self, k: int, s: Tensor) -> Tensor:
        """The risk penalty at ``t_k`` against volatility ``s`` as a quadratic form in (D, W, 1), weighted by
        the trapezoid rule and dt (constants dropped: they move no rate)."""
        n, m = self.model.n_agents, self.model
        weight = (0.5 if k in (0, m.n_steps) else 1.0) * m.dt
        form = torch.zeros(n + 2, n + 2, dtype=torch.float64, device=self.basis.device)
        form[:n, :n] = torch.diag(0.5 * self.gamma * s**2)
        form[:n, n] = form[n, :n] = 0.5 * self.gamma * s * self.xi  # gamma sigma xi W phi, split symmetrically
        form[:n, n + 1] = form[n + 1, :n] = 0.5 * self.gamma * s**2 * self.phibar  # phi = phibar + D
        form[n, n + 1] = form[n + 1, n] = 0.5 * (self.gamma * s * self.xi * self.phibar).sum()
        return weight * form

    def step(self, value: Tensor) -> tuple[Tensor, Tensor]:
        """One Riccati step: from the cost-to-go ``x' V x`` after a step, the optimal gain (N, N+2) of this
        step's rate and the part of the cost-to-go before it that the step's choice adds to ``V``.

        ``x_{k+1} = x_k + (dt u, dW, 0)``: the increment's variance adds a constant and moves no gain."""
        n, dt = self.model.n_agents, self.model.dt
        VB = dt * value[:, :n] @ self.basis  # V B Q, (N+2, N-1)
        hessian = self.control_cost + dt * self.basis.T @ VB[:n]
        gain = -torch.linalg.solve(hessian, VB.T)  # (N-1, N+2) in the zero-sum basis
        return self.basis @ gain, VB @ gain


def best_response(model: MarketModel, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The optimal zero-sum rates ``phidot_k = A_k D_k + a_k W_k + b_k`` against ``sigma`` (K+1,) on the
    model's grid: ``A`` (K+1, N, N), ``a`` (K+1, N), ``b`` (K+1, N), float64. The objective is the one of
    :func:`marketeq.solvers.moments.expected_welfare` (trapezoid risk term, exact cost of each step's rate)."""
    problem, n_steps = _Problem.of(model, sigma.device), model.n_steps
    sigma = sigma.double()
    value = problem.stage(n_steps, sigma[n_steps])
    gains = torch.zeros(n_steps + 1, model.n_agents, model.n_agents + 2, dtype=torch.float64,
                        device=sigma.device)
    for k in range(n_steps - 1, -1, -1):
        gains[k], added = problem.step(value)
        value = _symmetric(problem.stage(k, sigma[k]) + value + added)
    gains[n_steps] = gains[n_steps - 1]  # the rate at T trades nothing; keep the last one for the record
    return _split(gains, model.n_agents)


@dataclass
class GridEquilibrium:
    """The discrete game's equilibrium on one grid: the volatility, the agents' feedback, the mean holdings
    term of the return identity and the initial price."""

    sigma: Tensor  # (K+1,)
    A: Tensor  # (K+1, N, N)
    a: Tensor  # (K+1, N)
    b: Tensor  # (K+1, N)
    s0: Tensor  # ()


def equilibrium_sweep(model: MarketModel, device: torch.device | None = None) -> GridEquilibrium:
    """The equilibrium of the K-step game with quadratic costs and the return identity, by one backward pass.

    Going back from ``t_K`` (where ``sigma = alpha``), step ``i`` first takes the agents' Riccati step for the
    rate at ``t_i`` (it needs ``sigma`` after ``t_i`` only), then the market's volatility at ``t_i``:
    ``sigma_i (1 + dt X) = alpha - dt sum_{j > i} (sigma_j^2 dA_j/d dW_{i-1} + sigma_j X)``. The sensitivity
    of ``A_j = c' phi_j`` to ``dW_{i-1}`` propagates the rates' loadings on ``W`` from ``t_i`` on; summed with
    the weights ``sigma_j^2`` over ``j`` it is ``sum_{l >= i} dt a_l . lam_{l+1}`` with the adjoint
    ``lam_l = sigma_l^2 c + (I + dt A_l)' lam_{l+1}``, accumulated as the pass goes back.
    """
    device = device or model.device
    problem, n, n_steps, dt = _Problem.of(model, device), model.n_agents, model.n_steps, model.dt
    f64 = dict(dtype=torch.float64, device=device)
    weights = (model.identity_weights * model.gamma).to(**f64)  # c
    exposure = identity_exposure(model)
    sigma = torch.zeros(n_steps + 1, **f64)
    sigma[n_steps] = model.alpha
    gains = torch.zeros(n_steps + 1, n, n + 2, **f64)
    value = problem.stage(n_steps, sigma[n_steps])
    adjoint = torch.zeros(n, **f64)  # lam_{i+1}; lam_K = 0: the return at t_K is not in the Euler sum
    through_rates = torch.zeros((), **f64)  # sum_{l >= i} dt a_l . lam_{l+1}
    later_sigma = torch.zeros((), **f64)  # sum_{i < j <= K-1} sigma_j
    for i in range(n_steps - 1, -1, -1):
        gains[i], added = problem.step(value)
        if i <= n_steps - 2:
            through_rates = through_rates + dt * gains[i, :, n] @ adjoint
            later_sigma = later_sigma + sigma[i + 1]
        if i == 0:
            break
        sigma[i] = (model.alpha - dt * (through_rates + exposure * later_sigma)) / (1.0 + dt * exposure)
        value = _symmetric(problem.stage(i, sigma[i]) + value + added)
        adjoint = sigma[i] ** 2 * weights + (torch.eye(n, **f64) + dt * gains[i, :, :n]).T @ adjoint
    sigma[0] = first_point(sigma[1:])
    gains[n_steps] = gains[n_steps - 1]
    A, a, b = _split(gains, n)
    return GridEquilibrium(sigma, A, a, b, _expected_s0(model, sigma, A, b, weights))


def _expected_s0(model: MarketModel, sigma: Tensor, A: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``beta T - sum_j E mu_j dt`` with ``E mu_j = sigma_j^2 c' E phi_j`` (the ``W`` terms have mean zero)."""
    mean = torch.zeros(model.n_agents, dtype=torch.float64, device=sigma.device)  # E D_k
    expected_mu = torch.zeros((), dtype=torch.float64, device=sigma.device)
    phibar = model.phibar.to(mean)
    for k in range(model.n_steps):
        expected_mu = expected_mu + sigma[k] ** 2 * (phibar + mean) @ weights
        mean = mean + model.dt * (A[k] @ mean + b[k])
    return model.beta * model.horizon - expected_mu * model.dt


def _symmetric(value: Tensor) -> Tensor:
    return 0.5 * (value + value.T)


def _split(gains: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    return gains[..., :n], gains[..., n], gains[..., n + 1]


class FeedbackTable(nn.Module):
    """A linear feedback tabulated on a time grid, ``phidot_k = A_k D + a_k W + b_k`` (natural units): the
    agents of the quadratic-cost schedule. Evaluated on a grid whose points are points of this one.

    The table is empty until :meth:`set` (or a loaded state) fills it: ``A`` holds (K+1) N^2 numbers, 0.4 GB
    at 1000 agents and 50 steps, and the schedule builds tables for grids up to 32 times finer that it mostly
    never reaches."""

    def __init__(self, model: MarketModel) -> None:
        super().__init__()
        n = model.n_agents
        self.horizon, self.n_steps = model.horizon, model.n_steps
        f64 = dict(dtype=torch.float64, device=model.device)
        self.register_buffer("A", torch.zeros(0, n, n, **f64))
        self.register_buffer("a", torch.zeros(0, n, **f64))
        self.register_buffer("b", torch.zeros(0, n, **f64))

    def set(self, A: Tensor, a: Tensor, b: Tensor) -> None:
        self._resize(A.shape[0])
        self.A.copy_(A), self.a.copy_(a), self.b.copy_(b)

    def _resize(self, points: int) -> None:
        if self.A.shape[0] != points:
            n, f64 = self.a.shape[-1], dict(dtype=torch.float64, device=self.A.device)
            self.A, self.a, self.b = (torch.zeros(points, n, n, **f64), torch.zeros(points, n, **f64),
                                      torch.zeros(points, n, **f64))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        # a saved table is full (its grid was solved) or empty (it was not): take its size before copying
        if prefix + "A" in state_dict:
            self._resize(state_dict[prefix + "A"].shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def on(self, times: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(A, a, b)`` at ``times``; each must be a point of the table's grid."""
        position = times.double().to(self.A.device) / self.horizon * self.n_steps
        rows = position.round()
        if float((position - rows).abs().max()) > 1e-3:  # float32 times on fine grids
            raise ValueError("times off the feedback table's grid")
        rows = rows.long()
        if self.A.shape[0] != self.n_steps + 1:
            raise ValueError("the feedback table is empty: its grid has not been solved")
        return self.A[rows], self.a[rows], self.b[rows]
