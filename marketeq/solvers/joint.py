"""The joint-training baseline (model.md section 4): every network trained jointly on the summed losses.

The same agents' and market networks as the reinforcement-link solver, but one optimiser over all of them and
no alternation: each iteration adds the agents' loss, the terminal pinning and the link, and steps once. The
market's outputs are not detached, so the agents are not price takers — the defect that makes this baseline
miss the equilibrium; it is kept as published, for comparison.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from marketeq.model.rollout import price_path
from marketeq.solvers.losses import agent_utilities, agents_loss, link_loss, terminal_error
from marketeq.solvers.rlink import ReinforcementLinkSolver


class JointSolver(ReinforcementLinkSolver):
    """Joint training: one Adam over policy and market, on agents' loss + terminal + link."""

    name = "joint"

    def _joint_step(self, optimizer: torch.optim.Optimizer, clearing_weight: float) -> dict[str, Tensor]:
        m, settings = self.model, self.scenario.solver
        b = self.noise.draw(settings.batch_size)
        phi, phidot = self._rollout(b.W)
        mu, sigma = self._market_paths(phi, b.W)  # not detached: the agents see their effect on prices
        utilities = agent_utilities(m, mu, sigma, phi, phidot, b.W)
        agents, logs = agents_loss(m, utilities, phidot, self.agent_weights, clearing_weight)
        S = price_path(m, mu, sigma, b.dW, self.market.s0)
        terminal = terminal_error(m, S, b.W).mean() / (m.alpha**2 * m.horizon)
        loss = agents + terminal
        logs["market/terminal"] = terminal
        if not self.mu_known:
            link = link_loss(m, mu, sigma, phi, b.W, self.rate_scale, self.link_form)
            loss = loss + settings.link_weight * link
            logs["market/link"] = link
        self._descend(optimizer, loss)
        logs["joint/loss"] = loss
        return logs

    def _train(self) -> None:
        settings = self.scenario.solver
        for r in range(settings.rounds):
            plan = settings.round_schedule(r)
            params = itertools.chain(self.policy.parameters(), self.market.parameters())
            optimizer = torch.optim.Adam(params, lr=plan.agents_lr)
            self._opts = {"joint": optimizer}
            iterations = plan.agents_iterations + plan.market_iterations
            self._iterate(r, "joint", iterations,
                          lambda i, opt=optimizer, w=plan.clearing_weight: self._joint_step(opt, w))
