"""The trading cost ``G(x) = (lambda/q)|x|^q``: the one home of G, G' and (G')^-1 (model.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PowerCost:
    """``G(x) = (lam/q)|x|^q`` with ``q`` in (1, 2]; ``G'(x) = lam sign(x)|x|^(q-1)``.

    ``lam`` is one number for every agent or a tensor (N,) of per-agent scales, broadcast over the last
    (agent) axis of the rates.
    """

    lam: float | Tensor
    q: float = 2.0

    def __post_init__(self) -> None:
        if not 1.0 < self.q <= 2.0:
            raise ValueError(f"q = {self.q}: must lie in (1, 2]")
        if float(torch.as_tensor(self.lam).min()) < 0:
            raise ValueError(f"lambda = {self.lam}: must be >= 0")

    @property
    def frictionless(self) -> bool:
        return float(torch.as_tensor(self.lam).max()) == 0.0

    @property
    def common_lam(self) -> float | None:
        """The one cost scale shared by every agent, or None when the agents' scales differ."""
        lam = torch.as_tensor(self.lam, dtype=torch.float64)  # a float would otherwise pass through float32
        return float(lam.max()) if float(lam.max()) == float(lam.min()) else None

    def cost(self, rate: Tensor) -> Tensor:
        """G(rate), elementwise."""
        if self.q == 2.0:
            return 0.5 * self.lam * rate * rate
        return (self.lam / self.q) * rate.abs().pow(self.q)

    def marginal(self, rate: Tensor) -> Tensor:
        """G'(rate), elementwise."""
        if self.q == 2.0:
            return self.lam * rate
        return self.lam * torch.sign(rate) * rate.abs().pow(self.q - 1.0)

    def inverse_marginal(self, y: Tensor) -> Tensor:
        """(G')^-1(y) = sign(y)|y/lam|^(1/(q-1)): the rate whose marginal cost is y."""
        if self.frictionless:
            raise ValueError("(G')^-1 is undefined without trading costs (lambda = 0)")
        if self.q == 2.0:
            return y / self.lam
        return torch.sign(y) * (y.abs() / self.lam).pow(1.0 / (self.q - 1.0))

    def inverse_marginal_slope(self, y: Tensor) -> Tensor:
        """d/dy (G')^-1(y) = |y/lam|^((2-q)/(q-1)) / ((q-1) lam); zero at y = 0 when q < 2."""
        if self.q == 2.0:
            return torch.ones_like(y) / self.lam
        p = 1.0 / (self.q - 1.0)
        return p * (y.abs() / self.lam).pow(p - 1.0) / self.lam
