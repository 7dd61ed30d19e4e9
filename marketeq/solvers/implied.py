"""The expected return implied by the link, solved for instead of descended.

Used by ``solver.link_solve = "exact"`` (a mu network fitted to it) and ``solver.mu_mode = "implied"`` (no
network). With the agents' holdings frozen and a volatility given, the link asks for the mu at which the
agents' optimal rates clear at every state: ``sum_n (G'_n)^-1(E_k y^n_k) = 0`` for k < K, with
``y^n_k = (mu_k - gamma_n sigma_k (sigma_k phi^n_k + xi_n W_k)) dt + y^n_{k+1}``. The system is triangular:
from k = K-1 back to 0 each step is one increasing scalar equation in mu_k per path (bisection). For q = 2
this is the return identity; for power costs it is what the identity becomes. The continuation
``E_k y^n_{k+1}`` is the fitted value of step k+1 (a regression on the state there, which clears) taken in
expectation one step back exactly (:meth:`StateProjection.later`): path-wise noise, or a regression across
the step, would leave errors of order dt that mu_k = z/dt turns into errors of order 1. A gradient step on
the link loss instead meets a residual whose slope vanishes near clearing when q < 2 (the slope of (G')^-1
at 0), which stalls the market phase.
"""

from __future__ import annotations

import torch
from torch import Tensor

from marketeq.model.costs import PowerCost
from marketeq.model.market import MarketModel
from marketeq.solvers.losses import StateProjection

BISECTIONS = 30  # halvings of the bracket (to 1e-9 of its width), then Newton steps to float64 resolution
NEWTON_STEPS = 3


def clearing_shift(base: Tensor, cost: PowerCost) -> Tensor:
    """(...,) the z with ``sum_n (G'_n)^-1(base_n + z) = 0`` for ``base`` (..., N).

    The sum increases in z, is <= 0 at z = -max(base) and >= 0 at z = -min(base): bisection on that bracket,
    then Newton steps kept inside it (alone, Newton overshoots: the sum's slope vanishes where q < 2).
    """
    lo, hi = -base.amax(-1), -base.amin(-1)
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        above = cost.inverse_marginal(base + mid.unsqueeze(-1)).sum(-1) > 0
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    z = 0.5 * (lo + hi)
    for _ in range(NEWTON_STEPS):
        shifted = base + z.unsqueeze(-1)
        slope = cost.inverse_marginal_slope(shifted).sum(-1)
        step = cost.inverse_marginal(shifted).sum(-1) / slope.clamp_min(torch.finfo(slope.dtype).tiny)
        z = torch.minimum(torch.maximum(z - step, lo), hi)
    return z


@torch.no_grad()
def implied_mu(model: MarketModel, sigma: Tensor, phi: Tensor, W: Tensor, projection: StateProjection
               ) -> Tensor:
    """(B, K+1) mu solving the link's clearing equations by back-substitution (mu_K repeats mu_{K-1}).

    ``sigma``, ``W`` (B, K+1), ``phi`` (B, K+1, N); ``projection`` gives E_k[. | state at k]. In float64.
    """
    f64 = lambda x: x.double()  # noqa: E731
    risk = model.marginal_benefit(torch.zeros_like(f64(W)), f64(sigma), f64(phi), f64(W))  # (B, K+1, N)
    cost = _float64_cost(model.cost)
    dt, n_steps = model.dt, model.n_steps
    y_next = torch.zeros_like(risk[:, 0])
    mu = torch.empty_like(W, dtype=torch.float64)
    for k in range(n_steps - 1, -1, -1):
        continuation = projection.later(k, y_next.to(projection.operator.dtype)).double()
        mu[:, k] = clearing_shift(risk[:, k] * dt + continuation, cost) / dt
        y_next = (mu[:, k].unsqueeze(-1) + risk[:, k]) * dt + continuation
    mu[:, -1] = mu[:, -2]
    return mu.to(W.dtype)


def newton_corrected_mu(model: MarketModel, mu_ref: Tensor, sigma: Tensor, phi: Tensor, W: Tensor,
                        projection: StateProjection) -> Tensor:
    """(B, K+1) ``mu_ref`` moved by one Newton step of each step's clearing equation at ``sigma``.

    The back-substitution of :func:`implied_mu` with each scalar solve replaced by one Newton step from
    ``mu_ref``: equal to it where it solves the equations (at the sigma it was solved for) and moving with
    sigma to first order, through the later steps' returns as well. Differentiable in sigma, so the terminal
    condition trains sigma through the return it implies, as the return identity does in "mu known" mode.
    """
    dt, cost = model.dt, model.cost
    # One view per step: indexing the whole tensor at each step would make its backward pass quadratic in K.
    risk = model.marginal_benefit(torch.zeros_like(W), sigma, phi, W).unbind(1)  # K+1 of (B, N)
    mu_ref = mu_ref.unbind(1)
    y_next = torch.zeros_like(risk[0])
    steps: list[Tensor] = []
    for k in range(model.n_steps - 1, -1, -1):
        expected = (mu_ref[k].unsqueeze(-1) + risk[k]) * dt + projection.later(k, y_next)
        rates = cost.inverse_marginal(expected).sum(-1)
        slope = cost.inverse_marginal_slope(expected).sum(-1).detach()
        # Where every agent's marginal benefit is ~0 the slope vanishes (q < 2): cap the step there.
        slope = slope.clamp_min(1e-3 * float(slope.mean()) + 1e-30)
        mu_k = mu_ref[k] - rates / (slope * dt)
        steps.append(mu_k)
        y_next = expected + (mu_k - mu_ref[k]).unsqueeze(-1) * dt
    mu = torch.stack(steps[::-1], dim=1)
    return torch.cat([mu, mu[:, -1:]], dim=1)


def _float64_cost(cost: PowerCost) -> PowerCost:
    lam = cost.lam.double() if isinstance(cost.lam, Tensor) else cost.lam
    return PowerCost(lam, cost.q)
