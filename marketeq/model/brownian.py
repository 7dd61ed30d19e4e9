"""Seeded Brownian increments, so that solvers, oracles and metrics run on identical paths."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

_STREAMS = {"train": 1, "test": 2, "gap": 3, "rl": 4, "valid": 5}


def stream_seed(seed: int, stream: str) -> int:
    """A seed for one named random stream of a run, independent of the others."""
    digest = hashlib.sha256(f"{seed}:{_STREAMS[stream]}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@dataclass(frozen=True)
class Brownian:
    """Increments dW (B, K) and the path W (B, K+1) with W_0 = 0 (several assets: (B, K, d), (B, K+1, d))."""

    dW: Tensor
    W: Tensor

    @classmethod
    def from_increments(cls, dW: Tensor) -> Brownian:
        zero = torch.zeros_like(dW[:, :1])
        return cls(dW, torch.cat([zero, dW.cumsum(1)], dim=1))

    @property
    def n_paths(self) -> int:
        return int(self.dW.shape[0])

    def to(self, device: torch.device, dtype: torch.dtype) -> Brownian:
        return Brownian(self.dW.to(device, dtype), self.W.to(device, dtype))


def refine(brownian: Brownian, dt: float, seed: int) -> Brownian:
    """The same paths on a grid twice as fine: each step split at its midpoint by a seeded Brownian bridge.

    ``W`` at the old grid points is unchanged, so quantities on the two grids differ by the time step, not by
    the noise (what an extrapolation in the step needs).
    """
    dW = brownian.dW.double()
    generator = torch.Generator().manual_seed(seed)
    # Over a step of length dt, the midpoint given both ends is W_k + dW/2 + N(0, dt/4).
    noise = torch.randn(dW.shape, generator=generator, dtype=torch.float64) * (dt / 4.0) ** 0.5
    first = 0.5 * dW + noise
    fine = torch.stack([first, dW - first], dim=-1).reshape(dW.shape[0], -1)
    return Brownian.from_increments(fine).to(brownian.dW.device, brownian.dW.dtype)


def moment_matched(brownian: Brownian, dt: float) -> Brownian:
    """The paths with their antithetic copies, linearly mapped so that the increments' sample mean is zero
    and their sample covariance is exactly ``dt`` times the identity (needs at least as many paths as steps).

    An objective that is quadratic in the increments (quadratic costs, linear feedback) then takes its exact
    expectation on these paths, so an optimum found on them carries no sampling bias; with raw paths it
    does, and where the volatility amplifies the agents' response it showed (measured: a fixed point 30% from
    the equilibrium volatility on 2048 raw paths, within the time-step error on 2048 matched ones).
    """
    dW = brownian.dW.double()
    paired = torch.cat([dW, -dW], dim=0)
    covariance = paired.T @ paired / paired.shape[0]
    values, vectors = torch.linalg.eigh(covariance)
    whitening = vectors @ torch.diag(values.clamp_min(1e-300).rsqrt()) @ vectors.T
    matched = paired @ whitening * dt**0.5
    return Brownian.from_increments(matched).to(brownian.dW.device, brownian.dW.dtype)


class BrownianSource:
    """Draws batches of increments from one seeded CPU generator (identical numbers on every device)."""

    def __init__(self, seed: int, n_steps: int, dt: float, device: torch.device, dtype: torch.dtype) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.n_steps, self.dt, self.device, self.dtype = n_steps, dt, device, dtype

    def draw(self, n_paths: int, assets: int = 1) -> Brownian:
        """(B, K) increments, or (B, K, d) for d > 1 assets' factors (d = 1 draws the same numbers as (B, K))."""
        shape = (n_paths, self.n_steps) if assets == 1 else (n_paths, self.n_steps, assets)
        dW = torch.randn(*shape, generator=self.generator, dtype=torch.float64)
        return Brownian.from_increments(dW * self.dt**0.5).to(self.device, self.dtype)

    def get_state(self) -> Tensor:
        return self.generator.get_state()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state)


def brownian_test_set(seed: int, n_paths: int, n_steps: int, dt: float, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float64, assets: int = 1) -> Brownian:
    """The fixed test set of a run: the same paths for every method, device and dtype given the seed; with
    ``assets`` = d > 1, increments (B, K, d) of d independent factors."""
    source = BrownianSource(stream_seed(seed, "test"), n_steps, dt, torch.device(device), dtype)
    return source.draw(n_paths, assets)
