"""The deep-FBSDE baseline (model.md section 4): the agents' first-order conditions as a forward-backward
system.

Each agent's marginal value of holding more,
``Y^n_t = E_t int_t^T (mu - gamma_n sigma (sigma phi^n + xi_n W)) du``,
is simulated forward from a learned ``Y^n_0`` with a learned ``Z^n_t``:
``Y_{k+1} = Y_k - (mu_k - gamma sigma_k (sigma_k phi_k + xi W_k)) dt + Z_k dW_k``; the rates are
``phidot = (G')^-1(Y)``. One optimiser trains ``Y_0``, ``Z`` and the market (S_0, sigma, mu) on the terminal
price, ``Y_K = 0`` and the clearing penalty together. Nothing pins the system while it is far from the answer,
which is why this method is fragile (it diverges for power costs; the solver reports that as ``diverged``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from marketeq.model.brownian import Brownian
from marketeq.model.market import MarketModel
from marketeq.model.rollout import Paths, price_path
from marketeq.runtime import Runtime
from marketeq.scenario import Scenario
from marketeq.solvers.base import Solver
from marketeq.solvers.losses import clearing_error, terminal_error
from marketeq.solvers.networks import FeedbackNet, MarketNet, Scales


class BackwardNet(nn.Module):
    """Learned ``Y_0`` (N,) and ``Z(t, D, W)`` (N,), in units of the marginal cost of a natural rate."""

    def __init__(self, model: MarketModel, hidden: list[int], nonlinear: bool) -> None:
        super().__init__()
        self.scales = Scales(model)
        y_scale = model.cost.marginal(self.scales.rate)  # (N,) G'(natural rate)
        self.register_buffer("y_scale", y_scale, persistent=False)
        self.register_buffer("z_scale", y_scale / model.horizon**0.5, persistent=False)
        self.y0 = nn.Parameter(torch.zeros(model.n_agents))
        self.z = FeedbackNet(model.n_agents + 1, model.n_agents, hidden, nonlinear)

    def forward(self, t: Tensor, D: Tensor, W: Tensor, gains: Tensor) -> Tensor:
        x = self.scales.state(D, W)
        return self.z(t.expand(*x.shape[:-1], 1) / self.scales.horizon, x, gains) * self.z_scale


class FBSDESolver(Solver):
    """Deep-FBSDE: forward holdings and price, backward marginal values, all networks trained jointly."""

    name = "fbsde"

    def __init__(self, scenario: Scenario, runtime: Runtime) -> None:
        super().__init__(scenario, runtime)
        settings, rt, m = scenario.solver, runtime, self.model
        nonlinear = settings.nonlinear == "on" or (settings.nonlinear == "auto" and m.cost.q != 2.0)
        self.mu_known = settings.mu_source == "known"
        self.backward = BackwardNet(m, settings.agents_hidden, nonlinear).to(rt.device, rt.dtype)
        self.market = MarketNet(m, settings.market_hidden, nonlinear,
                                settings.sigma_at_maturity == "pinned").to(rt.device, rt.dtype)
        self.rate_scale = self.backward.scales.rate.to(rt.device, rt.dtype)
        self._opts: dict[str, torch.optim.Optimizer] = {}

    def _forward(self, b: Brownian) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """phi, phidot (B, K+1, N), mu, sigma (B, K+1) and Y_K (B, N) along the increments."""
        m, times = self.model, self.model.times
        sigma_grid = self.market.sigma(times)
        mu_gains = None if self.mu_known else self.market.mu_gains(times)
        z_gains = self.backward.z.time_features(times / m.horizon)
        n_paths = b.n_paths
        phi = m.phibar.expand(n_paths, m.n_agents)
        y = (self.backward.y0 * self.backward.y_scale).expand(n_paths, m.n_agents)
        phis, rates, mus = [], [], []
        for k in range(m.n_steps + 1):
            W = b.W[:, k]
            sigma = sigma_grid[k].expand(n_paths)
            if self.mu_known:
                mu = m.return_identity(sigma, phi, W)
            else:
                mu = self.market.mu(times[k], phi - m.phibar, W, mu_gains[k])
            rate = m.cost.inverse_marginal(y)
            phis.append(phi)
            rates.append(rate)
            mus.append(mu)
            if k < m.n_steps:
                z = self.backward(times[k], phi - m.phibar, W, z_gains[k])
                drift = m.marginal_benefit(mu, sigma, phi, W)
                y = y - drift * m.dt + z * b.dW[:, k].unsqueeze(-1)
                phi = phi + rate * m.dt
        sigma_paths = sigma_grid.expand(n_paths, -1)
        return torch.stack(phis, 1), torch.stack(rates, 1), torch.stack(mus, 1), sigma_paths, y

    def _step(self, optimizer: torch.optim.Optimizer, clearing_weight: float) -> dict[str, Tensor]:
        m = self.model
        b = self.noise.draw(self.scenario.solver.batch_size)
        phi, phidot, mu, sigma, y_end = self._forward(b)
        S = price_path(m, mu, sigma, b.dW, self.market.s0)
        terminal = terminal_error(m, S, b.W).mean() / (m.alpha**2 * m.horizon)
        backward = (y_end / self.backward.y_scale).pow(2).mean()
        clearing = clearing_error(phidot / self.rate_scale).mean()
        loss = terminal + backward + clearing_weight * clearing
        self._descend(optimizer, loss)
        return {"joint/loss": loss, "market/terminal": terminal, "agents/backward": backward,
                "agents/clearing": clearing}

    def _train(self) -> None:
        settings = self.scenario.solver
        params = [*self.backward.parameters(), *self.market.parameters()]
        for r in range(settings.rounds):
            plan = settings.round_schedule(r)
            optimizer = torch.optim.Adam(params, lr=plan.agents_lr)
            self._opts = {"joint": optimizer}
            iterations = plan.agents_iterations + plan.market_iterations
            self._iterate(r, "joint", iterations,
                          lambda i, opt=optimizer, w=plan.clearing_weight: self._step(opt, w))

    @torch.no_grad()
    def evaluate(self, brownian: Brownian) -> Paths:
        phi, phidot, mu, sigma, _ = self._forward(brownian)
        S = price_path(self.model, mu, sigma, brownian.dW, self.market.s0)
        return Paths(self.model.times, brownian.W, brownian.dW, phi, phidot, mu, sigma, S)

    def _modules(self) -> dict[str, nn.Module]:
        return {"backward": self.backward, "market": self.market}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opts
