"""How much memory a run needs, estimated before anything is allocated, and the check that refuses a run
that would not fit.

The estimate counts the largest tensors of each stage from the scenario's sizes (B paths, K steps, N agents,
hidden widths H): the agents' roll-out with its autograd graph (B x K x (N + H)), the market phase on its
cached roll-out (market batch x K x (N + H)), and the evaluation on the test set (test paths x K x N, kept
in float64 for the solver, the oracle and the metrics). Stages run one after another, so the run needs
the largest of them. The per-element factors were fitted to measured peak memory (scripts/bench_memory.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from marketeq.scenario import Scenario, ScenarioError

if TYPE_CHECKING:  # torch loads only for a CUDA device: `marketeq validate` estimates without it
    import torch

__all__ = ["MemoryEstimate", "available_bytes", "check_memory", "estimate_memory"]

# Values kept per (path, time step), fitted with scripts/bench_memory.py: per agent, per hidden unit of a
# nonlinear correction (pre-activation and tanh output, each kept for backward), and per path alone.
AGENTS_PER_AGENT, AGENTS_PER_HIDDEN, AGENTS_BASE = 26, 2.8, 8
MARKET_PER_AGENT, MARKET_PER_HIDDEN, MARKET_BASE = 12, 2.6, 24
# float64 values of the test stage (solver and oracle paths, their numpy copies, the metrics), and values in
# the run's dtype per hidden unit of a learned nonlinear mu, evaluated on the whole grid at once
TEST_PER_AGENT, TEST_BASE, TEST_PER_HIDDEN = 8, 20, 1.0
FIXED_BYTES = 300 * 2**20  # torch, numpy and the interpreter before the first tensor
ROOM = 0.9  # leave a tenth of the available memory to everything else


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes of each stage of a run."""

    agents: int
    market: int
    test: int

    @property
    def training(self) -> int:
        return max(self.agents, self.market)

    @property
    def peak(self) -> int:
        return max(self.training, self.test) + FIXED_BYTES

    def largest(self) -> str:
        stages = {"agents": self.agents, "market": self.market, "test": self.test}
        return max(stages, key=stages.__getitem__)


def _nonlinear(scenario: Scenario) -> bool:
    setting = scenario.solver.nonlinear
    return setting == "on" or (setting == "auto" and scenario.frictions.q != 2.0)


def estimate_memory(scenario: Scenario) -> MemoryEstimate:
    """Peak bytes of the agents phase, the market phase and the test-set evaluation of ``scenario``."""
    s, n = scenario.solver, scenario.n_agents
    grid = scenario.market.steps + 1
    item = 8 if scenario.run.dtype == "float64" else 4
    hidden_agents = sum(s.agents_hidden) if _nonlinear(scenario) else 0
    learned_mu = s.mu_mode == "learned" and _nonlinear(scenario)
    hidden_market = sum(s.market_hidden) if learned_mu else 0
    agents = s.batch_size * grid * (AGENTS_PER_AGENT * n + AGENTS_PER_HIDDEN * hidden_agents + AGENTS_BASE)
    market = s.market_batch_size * grid * (MARKET_PER_AGENT * n + MARKET_PER_HIDDEN * hidden_market
                                           + MARKET_BASE)
    test = scenario.run.test_paths * grid * ((TEST_PER_AGENT * n + TEST_BASE) * 8
                                             + TEST_PER_HIDDEN * hidden_market * item)
    return MemoryEstimate(int(agents * item), int(market * item), int(test))


def available_bytes(device: torch.device | None = None) -> int | None:
    """Memory a new allocation can get without swapping (free GPU memory for CUDA); None when unknown."""
    if device is not None and device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: int) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


# The fields that size each stage, largest lever first.
_LEVERS = {
    "agents": ("solver.batch_size", "market.steps", "solver.agents_hidden"),
    "market": ("solver.market_batch_size", "market.steps", "solver.market_hidden"),
    "test": ("run.test_paths", "market.steps"),
}


def _value(scenario: Scenario, dotted: str) -> object:
    section, key = dotted.split(".")
    return getattr(getattr(scenario, section), key)


def check_memory(scenario: Scenario, device: torch.device) -> MemoryEstimate:
    """The estimate, or ScenarioError (one line naming the fields to reduce) when it would not fit.

    On CUDA the training stages are compared with free GPU memory and the test set with host memory.
    When several stages would not fit, the error names the one that overshoots most.
    """
    estimate = estimate_memory(scenario)
    host = available_bytes()
    on_gpu = device.type == "cuda"
    training = "agents" if estimate.agents >= estimate.market else "market"
    checks = [(training, estimate.training + (0 if on_gpu else FIXED_BYTES),
               available_bytes(device) if on_gpu else host, "GPU " if on_gpu else ""),
              ("test", estimate.test + FIXED_BYTES, host, "")]
    over = [(need / have, stage, need, have, where) for stage, need, have, where in checks
            if have is not None and need > ROOM * have]
    if over:
        _, stage, need, have, where = max(over)
        field, *others = _LEVERS[stage]
        raise ScenarioError(
            field, _value(scenario, field),
            f"the run would need about {_gb(need)} of {where}memory ({stage} stage) but {_gb(have)} are "
            f"available; reduce {field} (or {', '.join(others)})")
    return estimate
