"""Exact expectations for a linear feedback policy (quadratic costs): the agents' objective and the market's
sensitivities from the first two moments of the holdings, without sampling paths.

With rates ``phidot_k = A_k D_k + a_k W_k + b_k`` the holdings are affine in the Brownian increments,
``D_k = m_k + R_k dW`` (``R_k`` is N x K, zero on the increments from ``t_k`` on), so every quadratic quantity
has an expectation in closed form. Over paths whose increments have sample mean zero and sample covariance
exactly ``dt I`` (:func:`marketeq.model.brownian.moment_matched`) the sample mean is the same number; computed
here it costs ``O(N^2 K^2)`` once per evaluation instead of a step-by-step roll-out of every path, and it is
free of the rounding that a float32 sum over many paths leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from marketeq.model.market import MarketModel


@dataclass
class LinearMoments:
    """Means and sensitivities along the grid: ``D_k = mean[k] + sens[k] @ dW``, ``phidot_k`` likewise."""

    mean: Tensor  # (K+1, N) E D_k
    sens: Tensor  # (K+1, N, K) dD_k / d dW_j
    rate_mean: Tensor  # (K+1, N)
    rate_sens: Tensor  # (K+1, N, K)


def linear_moments(model: MarketModel, A: Tensor, a: Tensor, b: Tensor, dt: float) -> LinearMoments:
    """Roll the mean and the sensitivities of the holdings forward by Euler steps of ``dt``."""
    n_points, n = a.shape
    n_steps = n_points - 1
    # Column 0 carries the mean, columns 1.. the sensitivities to dW_0..dW_{K-1}: one product per step.
    w_sens = (torch.arange(n_steps, device=a.device)[None, :] < torch.arange(n_points, device=a.device)[:, None])
    forcing = torch.cat([b.unsqueeze(-1), a.unsqueeze(-1) * w_sens.to(a.dtype).unsqueeze(1)], dim=-1)
    state = torch.zeros(n, n_steps + 1, dtype=a.dtype, device=a.device)
    states, rates = [], []
    # unbind once: indexing inside the loop would make autograd write a full-size zero gradient per step
    for k, (force_k, A_k) in enumerate(zip(forcing.unbind(0), A.unbind(0), strict=True)):
        rate = torch.addmm(force_k, A_k, state)
        states.append(state), rates.append(rate)
        if k < n_steps:
            state = state + dt * rate
    states_t, rates_t = torch.stack(states), torch.stack(rates)
    return LinearMoments(states_t[..., 0], states_t[..., 1:], rates_t[..., 0], rates_t[..., 1:])


def expected_welfare(model: MarketModel, sigma: Tensor, mom: LinearMoments) -> Tensor:
    """The expectation of :func:`marketeq.solvers.fixed_point.welfare` (the planner's objective without the
    return term and the endowment's own risk), exactly, for quadratic costs."""
    dt = model.dt
    sigma = sigma.double()
    phibar, gamma = model.phibar.double(), model.gamma.double()
    xi, lam = model.xi.double(), torch.as_tensor(model.cost.lam, dtype=torch.float64)
    n_steps = mom.sens.shape[-1]
    phi_mean = phibar + mom.mean  # (K+1, N)
    phi_sq = phi_mean**2 + dt * mom.sens.pow(2).sum(-1)  # E phi^2
    below = (torch.arange(n_steps)[None, :] < torch.arange(n_steps + 1)[:, None]).double()  # (K+1, K)
    w_phi = dt * torch.einsum("knj,kj->kn", mom.sens, below)  # E W_k phi_k
    s = sigma[:, None]
    penalty = 0.5 * gamma * (s**2 * phi_sq + 2.0 * s * xi * w_phi)
    penalty = 0.5 * (penalty[:-1] + penalty[1:])
    rate_sq = mom.rate_mean[:-1] ** 2 + dt * mom.rate_sens[:-1].pow(2).sum(-1)
    return -(penalty + 0.5 * lam * rate_sq).sum() * dt


def return_slopes(model: MarketModel, mom: LinearMoments) -> tuple[Tensor, Tensor]:
    """``E A_j`` (K+1,) and ``dA_j / d dW_k`` (K, K+1) for ``A_j = sum_n w_n gamma_n phi^n_j`` (the return
    identity's holdings term): what :func:`marketeq.solvers.fixed_point.volatility_pass` needs."""
    weights = (model.identity_weights * model.gamma).double()
    mean = (model.phibar.double() + mom.mean) @ weights
    slopes = torch.einsum("tnj,n->jt", mom.sens, weights)  # t: time point, j: increment
    return mean, slopes


def identity_moments(model: MarketModel, A: Tensor, a: Tensor, b: Tensor, dt: float) -> tuple[Tensor, Tensor]:
    """:func:`return_slopes` of :func:`linear_moments`, without their (K+1) x N x K tensors: the same forward
    roll, keeping only the holdings term ``c' phi_j`` of each step (memory O(N K + K^2) instead of
    O(N K^2): 13 GB at 1000 agents and 800 steps)."""
    n_points, n = a.shape
    n_steps = n_points - 1
    weights = (model.identity_weights * model.gamma).to(a)
    phibar = model.phibar.to(a)
    mean = torch.empty(n_points, dtype=a.dtype, device=a.device)
    slopes = torch.empty(n_steps, n_points, dtype=a.dtype, device=a.device)
    state = torch.zeros(n, n_steps + 1, dtype=a.dtype, device=a.device)  # column 0 the mean, then dD/d dW_j
    force = torch.zeros(n, n_steps + 1, dtype=a.dtype, device=a.device)
    for k in range(n_points):
        mean[k] = (phibar + state[:, 0]) @ weights
        slopes[:, k] = weights @ state[:, 1:]
        if k < n_steps:
            force[:, 0] = b[k]
            force[:, 1 : k + 1] = a[k].unsqueeze(-1)  # W_k loads on the increments before t_k
            state = state + dt * torch.addmm(force, A[k], state)
    return mean, slopes
