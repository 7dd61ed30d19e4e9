"""What every oracle offers."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths


class Oracle(ABC):
    """A reference answer for one market. ``exact`` is False for approximations."""

    name: str = "oracle"
    exact: bool = True

    def __init__(self, model: MarketModel) -> None:
        self.model = model

    @abstractmethod
    def paths(self, brownian: Brownian) -> Paths:
        """The oracle's market and holdings along the given increments (tensors on the model's device)."""

    @abstractmethod
    def sigma_curve(self, t: np.ndarray) -> np.ndarray:
        """Volatility as a deterministic function of time."""

    @property
    @abstractmethod
    def s0(self) -> float:
        """Initial price E[S_0] in continuous time."""
