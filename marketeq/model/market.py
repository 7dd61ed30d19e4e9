"""Market quantities of model.md sections 1-2: frictionless benchmark, utility flow, return identity."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from marketeq.model.costs import PowerCost
from marketeq.scenario import Scenario, ScenarioError


@dataclass(frozen=True)
class MarketModel:
    """A scenario's parameters as tensors on one device and dtype, with the formulas that use them.

    Shapes: B paths, K steps, N agents; time-indexed arrays have K+1 points ``t_0..t_K``.
    """

    alpha: float
    beta: float
    supply: float
    horizon: float
    n_steps: int
    gamma: Tensor  # (N,)
    xi: Tensor  # (N,)
    cost: PowerCost
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def from_scenario(cls, scenario: Scenario, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float64) -> MarketModel:
        if scenario.n_assets > 1:  # the several-asset market lives in marketeq.oracles.assets_market so far
            raise ScenarioError("market.assets", scenario.n_assets, "the one-asset market model (trained solvers, "
                                "gap, best responses) handles one asset; 'marketeq run' (q = 2) and 'marketeq "
                                "oracle' solve this scenario")
        m, f = scenario.market, scenario.frictions
        as_tensor = lambda values: torch.tensor(values, dtype=dtype, device=device)  # noqa: E731
        lams = scenario.lams
        lam = lams[0] if len(set(lams)) == 1 else as_tensor(lams)  # a number keeps the common case cheap
        return cls(m.alpha, m.beta, m.supply, m.horizon, m.steps, as_tensor(scenario.gammas),
                   as_tensor(scenario.xis), PowerCost(lam, f.q), torch.device(device), dtype)

    @property
    def n_agents(self) -> int:
        return int(self.gamma.shape[0])

    @property
    def dt(self) -> float:
        return self.horizon / self.n_steps

    @property
    def times(self) -> Tensor:
        """(K+1,) grid t_k = k*dt."""
        return torch.linspace(0.0, self.horizon, self.n_steps + 1, dtype=self.dtype, device=self.device)

    @property
    def gbar(self) -> float:
        """Aggregate risk aversion 1 / sum_n 1/gamma_n."""
        return float(1.0 / (1.0 / self.gamma).sum())

    @property
    def phibar(self) -> Tensor:
        """(N,) frictionless starting holdings gbar*s/gamma_n."""
        return self.gbar * self.supply / self.gamma

    @property
    def frictionless_mu(self) -> float:
        """Constant frictionless return gbar*alpha^2*s."""
        return self.gbar * self.alpha**2 * self.supply

    @property
    def frictionless_s0(self) -> float:
        """Frictionless initial price (beta - gbar*alpha^2*s)*T."""
        return (self.beta - self.frictionless_mu) * self.horizon

    def terminal_price(self, w_end: Tensor) -> Tensor:
        """Exogenous S_T = beta*T + alpha*W_T."""
        return self.beta * self.horizon + self.alpha * w_end

    def risk_term(self, sigma: Tensor, phi: Tensor, w: Tensor) -> Tensor:
        """(..., N) total exposure sigma*phi^n + xi_n*W (sigma, w broadcast over the agent axis)."""
        return sigma.unsqueeze(-1) * phi + self.xi * w.unsqueeze(-1)

    @property
    def identity_weights(self) -> Tensor:
        """(N,) weights of the return identity: (1/lambda_n) / sum_m (1/lambda_m), i.e. 1/N for a common cost.

        Clearing with q = 2 (or N = 2) forces sum_n Y^n/lambda_n = 0, which pins mu to this weighted mean.
        """
        lam = self.cost.common_lam
        if lam is not None:
            return torch.full_like(self.gamma, 1.0 / self.n_agents)
        inverse = 1.0 / torch.as_tensor(self.cost.lam, dtype=self.dtype, device=self.device)
        return inverse / inverse.sum()

    def return_identity(self, sigma: Tensor, phi: Tensor, w: Tensor) -> Tensor:
        """mu = sigma * sum_n w_n gamma_n (sigma phi^n + xi_n W) with w = :attr:`identity_weights`; exact when
        q = 2 or N = 2 (model.md section 2, where the weights are 1/N)."""
        return sigma * (self.identity_weights * self.gamma * self.risk_term(sigma, phi, w)).sum(-1)

    def marginal_benefit(self, mu: Tensor, sigma: Tensor, phi: Tensor, w: Tensor) -> Tensor:
        """(..., N) flow mu - gamma_n sigma (sigma phi^n + xi_n W): its future sum drives agent n's rate."""
        return mu.unsqueeze(-1) - self.gamma * sigma.unsqueeze(-1) * self.risk_term(sigma, phi, w)

    def utility_flow(self, mu: Tensor, sigma: Tensor, phi: Tensor, phidot: Tensor, w: Tensor) -> Tensor:
        """(..., N) mu phi - gamma/2 (sigma phi + xi W)^2 - G(phidot), per unit of time."""
        risk = self.risk_term(sigma, phi, w)
        return mu.unsqueeze(-1) * phi - 0.5 * self.gamma * risk * risk - self.cost.cost(phidot)
