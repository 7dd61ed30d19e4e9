"""How much memory a run needs, estimated before anything is allocated, and the check that refuses a run
that would not fit.

The peak resident memory of a run is modelled as

    fixed + parameters + max(agents stage, market stage, test stage)

with one function per term below (B paths, K steps, N agents, hidden widths H; ``item`` bytes per number of
the run's dtype). The stages run one after another, so only the largest counts; the interpreter and the
networks' parameters (with their gradients, Adam moments and the copies a run keeps to roll back and to
checkpoint) are there throughout. Each factor was fitted to measured peak memory with
``scripts/bench_memory.py`` (per stage, and whole ``marketeq run`` processes with ``--runs``); when the solver
changes, re-run it and update the function whose stage changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from marketeq.scenario import Scenario, ScenarioError

if TYPE_CHECKING:  # torch loads only for a CUDA device: `marketeq validate` estimates without it
    import torch

__all__ = ["MemoryEstimate", "available_bytes", "check_memory", "estimate_memory"]

ROOM = 0.9  # leave a tenth of the available memory to everything else


def fixed_bytes() -> int:
    """Python, torch, numpy, h5py and marketeq before the first tensor of the run."""
    return 400 * 2**20


def _mlp(n_in: int, hidden: list[int], n_out: int) -> int:
    widths = [n_in, *hidden, n_out]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def parameter_count(scenario: Scenario) -> int:
    """Parameters of the agents' policy and the market (solvers/networks.py): a feedback network's gains
    map time to an (outputs x (N + 2)) matrix, its optional correction maps the state to the outputs."""
    s, n = scenario.solver, scenario.n_agents
    nonlinear, state = _nonlinear(scenario), n + 2  # (D, W) plus the offset
    policy = _mlp(1, s.agents_hidden, n * state) + (_mlp(state, s.agents_hidden, n) if nonlinear else 0)
    policy += _mlp(1, [32, 32], 1) if s.rate_profile == "shared" else 0
    market = 1 + _mlp(1, s.market_hidden, 1) + _mlp(1, s.market_hidden, state)
    market += _mlp(state, s.market_hidden, 1) if nonlinear else 0
    return policy + market


# Copies of every parameter alive through a run: the values, gradients, Adam's two moments, the last good
# state (values and moments) kept for roll-backs, and the checkpoint's copy while it is written.
PARAMETER_COPIES = 8


def parameter_bytes(scenario: Scenario) -> int:
    """The networks' parameters and the copies of them a run keeps (PARAMETER_COPIES)."""
    return PARAMETER_COPIES * parameter_count(scenario) * _item(scenario)


# Values kept per (path, time step), fitted with scripts/bench_memory.py: per agent, per hidden unit of a
# nonlinear correction (pre-activation and tanh output, each kept for backward), and per path alone.
AGENTS_PER_AGENT, AGENTS_PER_HIDDEN, AGENTS_BASE = 26, 2.8, 8
# The policy's gains on the whole grid, (K+1) x N x (N+2), with their gradient and Adam's update of them.
AGENTS_GAINS_COPIES = 12


def agents_stage_bytes(scenario: Scenario) -> int:
    """One step of the agents' phase: the roll-out of solver.batch_size paths with its autograd graph."""
    s, n = scenario.solver, scenario.n_agents
    hidden = sum(s.agents_hidden) if _nonlinear(scenario) else 0
    per_step = AGENTS_PER_AGENT * n + AGENTS_PER_HIDDEN * hidden + AGENTS_BASE
    return int(s.batch_size * _grid(scenario) * per_step * _item(scenario))


def gains_bytes(scenario: Scenario) -> int:
    """The policy's time-dependent gain matrices on the grid, during the agents' phase (N^2 per step)."""
    n = scenario.n_agents
    return int(AGENTS_GAINS_COPIES * _grid(scenario) * n * (n + 2) * _item(scenario))


MARKET_PER_AGENT, MARKET_PER_HIDDEN, MARKET_BASE = 12, 2.6, 24


def market_stage_bytes(scenario: Scenario) -> int:
    """One step of the market's phase on its cached roll-out of solver.market_batch_size paths."""
    s, n = scenario.solver, scenario.n_agents
    learned_mu = s.mu_source == "learned" and _nonlinear(scenario)
    hidden = sum(s.market_hidden) if learned_mu else 0
    per_step = MARKET_PER_AGENT * n + MARKET_PER_HIDDEN * hidden + MARKET_BASE
    return int(s.market_batch_size * _grid(scenario) * per_step * _item(scenario))


# float64 values of the test stage per (path, time step): the solver's and the oracle's paths, their numpy
# copies, the metrics and the result written and shown; values in the run's dtype per hidden unit of a learned
# nonlinear mu (evaluated on the whole grid at once). The market's cached roll-out (holdings and rates,
# solver.market_batch_size paths) is still alive then.
TEST_PER_AGENT, TEST_BASE, TEST_PER_HIDDEN = 8, 20, 1.0
CACHE_PER_AGENT = 2


def test_stage_bytes(scenario: Scenario) -> int:
    """Evaluation on run.test_paths paths, the oracle on the same paths, the metrics and the result file."""
    s, n, grid = scenario.solver, scenario.n_agents, _grid(scenario)
    learned_mu = s.mu_source == "learned" and _nonlinear(scenario)
    hidden = sum(s.market_hidden) if learned_mu else 0
    test = scenario.run.test_paths * grid * ((TEST_PER_AGENT * n + TEST_BASE) * 8
                                             + TEST_PER_HIDDEN * hidden * _item(scenario))
    cache = s.market_batch_size * grid * CACHE_PER_AGENT * n * _item(scenario)
    return int(test + cache)


def _nonlinear(scenario: Scenario) -> bool:
    setting = scenario.solver.nonlinear
    return setting == "on" or (setting == "auto" and scenario.frictions.q != 2.0)


def _item(scenario: Scenario) -> int:
    return 8 if scenario.run.dtype == "float64" else 4


def _grid(scenario: Scenario) -> int:
    return scenario.market.steps + 1


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated bytes of each term of a run's peak (see the module docstring)."""

    agents: int
    market: int
    test: int
    parameters: int = 0
    gains: int = 0
    fixed: int = 0

    @property
    def training(self) -> int:
        return max(self.agents + self.gains, self.market)

    @property
    def peak(self) -> int:
        return self.fixed + self.parameters + max(self.training, self.test)

    def terms(self) -> dict[str, int]:
        return {"fixed": self.fixed, "parameters": self.parameters, "agents": self.agents,
                "gains": self.gains, "market": self.market, "test": self.test}

    def largest(self) -> str:
        stages = {"agents": self.agents + self.gains, "market": self.market, "test": self.test}
        return max(stages, key=stages.__getitem__)


def estimate_memory(scenario: Scenario) -> MemoryEstimate:
    """Bytes of every term of the peak memory of ``scenario``'s run."""
    return MemoryEstimate(agents_stage_bytes(scenario), market_stage_bytes(scenario),
                          test_stage_bytes(scenario), parameter_bytes(scenario), gains_bytes(scenario),
                          fixed_bytes())


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
    training = "agents" if estimate.agents + estimate.gains >= estimate.market else "market"
    resident = estimate.parameters + (0 if on_gpu else estimate.fixed)
    checks = [(training, estimate.training + resident, available_bytes(device) if on_gpu else host,
               "GPU " if on_gpu else ""),
              ("test", estimate.test + estimate.fixed + estimate.parameters, host, "")]
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
