"""Forward Euler roll-out of holdings and price along Brownian paths (model.md section 4)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields

import torch
from torch import Tensor

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.results import Paths  # re-exported: the engine builds Paths here

__all__ = ["MuFn", "Paths", "RatesFn", "SigmaFn", "paths_to_torch", "price_path", "roll_holdings", "simulate",
           "stop_points"]

# rates(k, D_k (B, N), W_k (B,)) -> (B, N), called step by step;
# sigma(D (B, K+1, N), W (B, K+1)) and mu(D, W, phi, sigma) -> broadcastable to (B, K+1), called once.
RatesFn = Callable[[int, Tensor, Tensor], Tensor]
SigmaFn = Callable[[Tensor, Tensor], Tensor]
MuFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


_STOP_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("marketeq_stop_check", default=None)


@contextmanager
def stop_points(check: Callable[[], None]) -> Iterator[None]:
    """Within the block, call ``check()`` between the time steps of every roll-out and whenever autograd saves
    a tensor for, or reloads one in, a backward pass: ``check`` may raise to abandon a long computation.

    Why: with many agents one training iteration takes most of a minute (two thirds of it in the backward
    pass), and a stop that waits for its end cannot put a result on disk within seconds.
    """
    def hook(tensor: Tensor) -> Tensor:
        check()
        return tensor

    token = _STOP_CHECK.set(check)
    try:
        with torch.autograd.graph.saved_tensors_hooks(hook, hook):
            yield
    finally:
        _STOP_CHECK.reset(token)


def paths_to_torch(paths: Paths, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float64) -> Paths:
    """``paths`` with every field as a tensor: numpy paths (from files and oracles) are copied to ``device``
    and ``dtype``; paths that already hold tensors are returned as they are."""
    if isinstance(paths.W, Tensor):
        return paths
    return Paths(**{f.name: torch.as_tensor(getattr(paths, f.name), dtype=dtype, device=device)
                    for f in fields(paths)})


def simulate(model: MarketModel, brownian: Brownian, rates: RatesFn, sigma: SigmaFn, mu: MuFn,
             s0: Tensor | float, phi0: Tensor | None = None) -> Paths:
    """Roll holdings forward with ``phi_{k+1} = phi_k + phidot_k dt`` from the frictionless holdings, then
    evaluate the market on the whole grid at once and the price with
    ``S_{k+1} = S_k + mu_k dt + sigma_k dW_k``.

    Only the rates need the sequential loop: given the holdings, the market is a function of the state.
    """
    W, dW = brownian.W, brownian.dW
    phi, phidot = roll_holdings(model, W, rates, phi0)
    D = phi - model.phibar
    shape = W.shape
    sigma_t = torch.as_tensor(sigma(D, W), dtype=W.dtype, device=W.device).expand(shape)
    mu_t = torch.as_tensor(mu(D, W, phi, sigma_t), dtype=W.dtype, device=W.device).expand(shape)
    return Paths(model.times, W, dW, phi, phidot, mu_t, sigma_t, price_path(model, mu_t, sigma_t, dW, s0))


def roll_holdings(model: MarketModel, W: Tensor, rates: RatesFn,
                  phi0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Holdings (B, K+1, N) and rates (B, K+1, N) of a policy; rates at t_K are reported, not used."""
    phibar = model.phibar
    phi_k = (phibar if phi0 is None else phi0).expand(W.shape[0], model.n_agents)
    phis, rate_list = [], []
    check = _STOP_CHECK.get()
    for k in range(model.n_steps + 1):
        if check is not None:  # no-grad roll-outs (a cached market roll-out, an evaluation) save no tensors
            check()
        rate_k = rates(k, phi_k - phibar, W[:, k])
        phis.append(phi_k)
        rate_list.append(rate_k)
        if k < model.n_steps:
            phi_k = phi_k + rate_k * model.dt
    return torch.stack(phis, 1), torch.stack(rate_list, 1)


def price_path(model: MarketModel, mu: Tensor, sigma: Tensor, dW: Tensor, s0: Tensor | float) -> Tensor:
    """(B, K+1) Euler price path from S_0 with drift mu and volatility sigma, both (B, K+1)."""
    s0_t = torch.as_tensor(s0, dtype=dW.dtype, device=dW.device).expand(dW.shape[0]).unsqueeze(1)
    steps = mu[:, :-1] * model.dt + sigma[:, :-1] * dW
    return torch.cat([s0_t, s0_t + steps.cumsum(1)], dim=1)
