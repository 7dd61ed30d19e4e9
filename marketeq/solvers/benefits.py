"""The agents' rates for power costs, parametrised by their marginal benefit rather than by the rate itself.

An agent's optimal rate is ``(G')^-1(Y)`` of its marginal benefit ``Y`` (model.md section 2). ``Y`` is close
to linear in the state (exactly so for q = 2), while the rate is not: for q = 3/2,
``(G')^-1(y) = sign(y)(y/lam)^2`` makes the rate quadratic in the deviation near the target (the
leading-order formula: ``|g(x)|^2`` with ``g`` linear at 0). A policy network whose output is the rate must
build that curvature from its tanh layers, and its linear feedback part is of no help; one whose output is
``Y`` starts from the right shape. Measured on E3, level 0, sigma = alpha, L-BFGS chunks of 25 evaluations:
the rate network's objective was -28.94 after 10 chunks and -28.99 after 15; through the marginal benefit it
was -29.01 after one chunk, -29.17 after 10 and -29.23 after 16. On E2 the converged objective on 100 steps
was -0.86207 against -0.86127 (the rate network's optimum was not reached).

The map from the network's output to the rate is ``h(y) = sign(y) ((|y| + c)^p - c^p) / lam^p`` with
``p = 1/(q-1)``: ``(G')^-1`` shifted by a small ``c`` so that its slope at 0 is not zero (with ``(G')^-1``
itself a fresh network, which outputs 0, gets no gradient). ``h`` is a bijection, so every rate is still
reachable; only the network's coordinates change. For q = 2 it is ``y / lam``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from marketeq.model.market import MarketModel

SOFTENING = 0.1  # c in units of the marginal cost of a typical rate: h is (G')^-1 beyond about 10 c


class BenefitToRate:
    """``h``: the network's output (B, N), in units of a typical rate, read as a marginal benefit -> rates."""

    def __init__(self, model: MarketModel, rate_scale: Tensor) -> None:
        q = model.cost.q
        self.p = 1.0 / (q - 1.0)
        self.lam = torch.as_tensor(model.cost.lam, dtype=rate_scale.dtype, device=rate_scale.device)
        self.rate_scale = rate_scale
        self.benefit_scale = self.lam * rate_scale.pow(q - 1.0)  # G' of a typical rate
        self.c = SOFTENING * self.benefit_scale

    def __call__(self, out: Tensor) -> Tensor:
        y = self.benefit_scale.to(out.dtype) * out / self.rate_scale.to(out.dtype)
        c, p = self.c.to(out.dtype), self.p
        # h(y) = y * ((|y| + c)^p - c^p) / |y|: written with y as a factor so that the gradient at y = 0 is
        # h'(0) = p c^(p-1) / lam^p, not the zero that autograd gives sign(y) and |y| there.
        u = torch.where(y.abs() < 1e-6 * c, 1e-6 * c, y.abs())
        return y * (c.pow(p) * torch.expm1(p * torch.log1p(u / c)) / u) / self.lam.to(out.dtype).pow(p)
