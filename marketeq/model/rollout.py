"""Forward Euler roll-out of holdings and price along Brownian paths (model.md section 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel

# rates(k, D_k (B, N), W_k (B,)) -> (B, N), called step by step;
# sigma(D (B, K+1, N), W (B, K+1)) and mu(D, W, phi, sigma) -> broadcastable to (B, K+1), called once.
RatesFn = Callable[[int, Tensor, Tensor], Tensor]
SigmaFn = Callable[[Tensor, Tensor], Tensor]
MuFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


@dataclass
class Paths:
    """Simulated market on a time grid; tensors or numpy arrays (see :meth:`numpy`).

    Shapes: ``t`` (K+1,), ``W`` (B, K+1), ``dW`` (B, K), ``phi``/``phidot`` (B, K+1, N),
    ``mu``/``sigma``/``S`` (B, K+1). Flow quantities at ``t_K`` are reported but unused by Euler sums.
    """

    t: Any
    W: Any
    dW: Any
    phi: Any
    phidot: Any
    mu: Any
    sigma: Any
    S: Any

    def numpy(self) -> Paths:
        """A copy with every field as a float64 numpy array."""
        convert = lambda x: x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x)  # noqa: E731
        return Paths(**{f.name: convert(getattr(self, f.name)) for f in fields(self)})

    def torch(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64) -> Paths:
        """A copy with every field as a tensor."""
        return Paths(**{f.name: torch.as_tensor(getattr(self, f.name), dtype=dtype, device=device)
                        for f in fields(self)})

    def select(self, index: Any) -> Paths:
        """The paths picked by ``index`` along the path axis (the grid ``t`` is kept)."""
        return Paths(**{f.name: getattr(self, f.name) if f.name == "t" else getattr(self, f.name)[index]
                        for f in fields(self)})

    @property
    def n_paths(self) -> int:
        return int(self.W.shape[0])


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
    for k in range(model.n_steps + 1):
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
