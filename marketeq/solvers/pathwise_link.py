"""The market of the general link (power costs, more than two agents) with path-wise sensitivities.

The return the link implies at step j is a function of the state there, ``mu_j = M_j(D_j, W_j)``: the
clearing shift ``z`` of ``sum_n (G')^-1(b^n + z) = 0`` with ``b^n = risk^n dt + continuation^n``, the
continuation a regression on features of the state one step ahead (:mod:`marketeq.solvers.implied`).
The terminal condition identifies the volatility through the return's sensitivity to each increment,
``sigma(t_{k+1}) = alpha - dt sum_{j>k} E[d mu_j / d dW_k]``. A least-squares fit of the terminal gap on the
increments (:func:`~marketeq.solvers.fixed_point.fit_volatility`) estimates those expectations by
correlation, with a sampling error per point of order ``sqrt(residual / (B dt))``; here they are averaged
path by path: ``d mu_j / d dW_k = grad M_j . dx_j / d dW_k``, with ``grad M_j`` in closed form (the implicit
function theorem on the clearing equation; the regression's coefficients held fixed, the features are
polynomials) and the state's tangents from the policy's Jacobian (:mod:`marketeq.solvers.pathwise`). The
same correction for the return identity took E2 from "unresolved" to converged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from marketeq.model.costs import PowerCost
from marketeq.model.market import MarketModel
from marketeq.model.rollout import RatesFn
from marketeq.solvers.fixed_point import first_point
from marketeq.solvers.implied import clearing_shift
from marketeq.solvers.losses import StateProjection
from marketeq.solvers.pathwise import rate_jacobian


def policy_jacobians(model: MarketModel, rates: RatesFn, phi: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """``d r / d D`` (K, B, N, N) and ``d r / d W`` (K, B, N) along the roll-out, in float64."""
    rows = [rate_jacobian(rates, k, phi[:, k] - model.phibar, W[:, k]) for k in range(model.n_steps)]
    return torch.stack([r[0] for r in rows]).double(), torch.stack([r[1] for r in rows]).double()


@torch.no_grad()
def link_volatility(model: MarketModel, sigma: Tensor, phi: Tensor, W: Tensor, dW: Tensor,
                    projection: StateProjection, scales: object, jacobians: tuple[Tensor, Tensor]
                    ) -> tuple[Tensor, Tensor]:
    """The volatility (K+1,) and initial price that meet the terminal condition for the link's return at
    ``sigma``: one sweep of ``sigma -> mu -> sigma`` with path-wise sensitivities. In float64.

    ``phi`` (B, K+1, N), ``W`` (B, K+1), ``dW`` (B, K); ``projection`` built on this roll-out in the units of
    ``scales`` (the network's :class:`~marketeq.solvers.networks.Scales`); ``jacobians`` from
    :func:`policy_jacobians`.
    """
    mu, grad_D, grad_W = _link_return(model, sigma.double(), phi.double(), W.double(), projection, scales,
                                      jacobians)
    later = _summed_sensitivity(model, grad_D, grad_W, jacobians)  # (K,): E sum_{j>k} d mu_j / d dW_k
    n_steps, dt = model.n_steps, model.dt
    new = torch.empty(n_steps + 1, dtype=torch.float64, device=W.device)
    new[1:] = model.alpha - dt * later
    new[0] = first_point(new[1:])
    W64, dW64 = W.double(), dW.double()
    s0 = model.beta * model.horizon + model.alpha * W64[:, -1] - mu[:, :-1].sum(1) * dt - dW64 @ new[1:]
    return new, s0.mean()


def _link_return(model: MarketModel, sigma: Tensor, phi: Tensor, W: Tensor, projection: StateProjection,
                 scales: object, jacobians: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """The link's return (B, K+1) by back-substitution, as :func:`~marketeq.solvers.implied.implied_mu`,
    and its gradient in the state at each step: (B, K, N) in D and (B, K) in W."""
    lam = model.cost.lam
    cost = PowerCost(lam.double() if isinstance(lam, Tensor) else lam, model.cost.q)  # in float64
    dt, n_steps, n_agents = model.dt, model.n_steps, model.n_agents
    gamma, xi = model.gamma.double(), model.xi.double()
    deviation = scales.deviation.double().to(W.device)  # type: ignore[attr-defined]
    w_unit = float(scales.w)  # type: ignore[attr-defined]
    w_variance = dt / w_unit**2
    jac_D, jac_W = jacobians
    risk = model.marginal_benefit(torch.zeros_like(W), sigma.expand(W.shape), phi, W)  # (B, K+1, N)
    eye = torch.eye(n_agents, dtype=torch.float64, device=W.device)
    y_next = torch.zeros_like(risk[:, 0])
    mu = torch.empty_like(W)
    grad_D = torch.zeros(W.shape[0], n_steps, n_agents, dtype=torch.float64, device=W.device)
    grad_W = torch.zeros(W.shape[0], n_steps, dtype=torch.float64, device=W.device)
    for k in range(n_steps - 1, -1, -1):
        if k + 1 < n_steps:
            coef = (projection.operator[k + 1].double() @ y_next / y_next.shape[0])  # (P, N)
            continuation = projection.next_features[k].double() @ coef
        else:
            coef, continuation = None, torch.zeros_like(y_next)
        base = risk[:, k] * dt + continuation
        z = clearing_shift(base, cost)
        mu[:, k] = z / dt
        y_next = base + z.unsqueeze(-1)
        # d base^n / d x: the risk term's own, and the continuation's through the features one step ahead
        d_base_D = -(gamma * sigma[k] ** 2 * dt).unsqueeze(0) * eye  # (N out, N in), same for every path
        d_base_D = d_base_D.expand(W.shape[0], -1, -1).clone()
        d_base_W = (-(gamma * sigma[k] * xi) * dt).expand(W.shape[0], -1).clone()
        if coef is not None:
            ahead = projection.next_features[k].double()
            n_coords = n_agents + 1
            u = ahead[:, 1: 1 + n_coords]  # the scaled state one step ahead: D_{k+1}/deviation, W_k/w
            lin, sq, cube = (coef[1 + i * n_coords: 1 + (i + 1) * n_coords] for i in range(3))  # (S, N) each
            d_u = lin + 2.0 * u.unsqueeze(-1) * sq + 3.0 * (u * u).unsqueeze(-1) * cube  # (B, S, N)
            d_u[:, -1] += 3.0 * w_variance * cube[-1]  # the E_k W^3 correction's 3 w dt term
            d_uD = d_u[:, :-1] / deviation[None, :, None]  # (B, N in feature, N out) per unit of D_{k+1}
            moved_D = eye + dt * jac_D[k]  # d D_{k+1} / d D_k (B, N, N)
            d_base_D += torch.einsum("bio,bim->bom", d_uD, moved_D)
            d_base_W += torch.einsum("bio,bi->bo", d_uD, dt * jac_W[k]) + d_u[:, -1] / w_unit
        slope = cost.inverse_marginal_slope(y_next)  # (B, N)
        total = slope.sum(-1)
        total = total.clamp_min(1e-3 * float(total.mean()) + 1e-30)  # where every agent is at rest (q < 2)
        grad_D[:, k] = -torch.einsum("bo,bom->bm", slope, d_base_D) / (total * dt).unsqueeze(-1)
        grad_W[:, k] = -(slope * d_base_W).sum(-1) / (total * dt)
    mu[:, -1] = mu[:, -2]
    return mu, grad_D, grad_W


def _summed_sensitivity(model: MarketModel, grad_D: Tensor, grad_W: Tensor, jacobians: tuple[Tensor, Tensor]
                        ) -> Tensor:
    """(K,) ``E[sum_{j>k} d mu_j / d dW_k]`` (j < K), the sensitivity of the Euler sum of returns to each
    increment: the terminal condition needs no more than these row sums, so one adjoint pass backward in time
    gives them (O(B N^2 K) instead of the O(B N K^2) of every ``d mu_j / d dW_k``)."""
    jac_D, jac_W = jacobians
    dt = model.dt
    adjoint = torch.zeros_like(grad_D[:, 0])  # d (sum_{i>j} mu_i) / d D_{j+1}, path by path
    per_step = torch.zeros(model.n_steps, dtype=torch.float64, device=grad_W.device)  # E d(sum) / d W_j
    for j in range(model.n_steps - 1, 0, -1):
        per_step[j] = (grad_W[:, j] + dt * (adjoint * jac_W[j]).sum(-1)).mean()
        adjoint = grad_D[:, j] + adjoint + dt * torch.bmm(adjoint.unsqueeze(1), jac_D[j]).squeeze(1)
    # W_j moves with every increment before t_j: sum over j > k
    return torch.cat([per_step[1:].flip(0).cumsum(0).flip(0), per_step.new_zeros(1)])
