"""Shared fixtures: small float64 scenarios and their market models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from marketeq import load_scenario  # noqa: E402
from marketeq.model.market import MarketModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session")
def e1():
    return load_scenario(SCENARIOS / "paper_e1_quadratic_10_agents.toml")


@pytest.fixture(scope="session")
def e1_model(e1):
    return MarketModel.from_scenario(e1, "cpu", torch.float64)


@pytest.fixture(scope="session")
def quickstart():
    return load_scenario(SCENARIOS / "quickstart.toml")


@pytest.fixture(scope="session")
def tiny(quickstart):
    """The quickstart market on a coarse grid with a short fixed float64 schedule: a few seconds of training."""
    return quickstart.replace(**{
        "market.steps": 20, "run.dtype": "float64", "run.test_paths": 500, "run.device": "cpu",
        "solver.schedule": "rounds", "solver.mu_mode": "learned",
        "solver.rounds": 2, "solver.agents_iterations": [60], "solver.market_iterations": [60],
        "solver.batch_size": 256, "solver.market_batch_size": 512, "solver.eval_every": 20,
    })


@pytest.fixture(scope="session")
def micro(quickstart):
    """A very small float64 run (two rounds, 130 iterations, tiny networks): well under a second of training,
    for checkpoint, resume and divergence tests that train several times."""
    return quickstart.replace(**{
        "market.steps": 8, "run.dtype": "float64", "run.test_paths": 100, "run.device": "cpu",
        "solver.schedule": "rounds", "solver.mu_mode": "learned",
        "solver.rounds": 2, "solver.agents_iterations": [30], "solver.market_iterations": [35],
        "solver.batch_size": 32, "solver.market_batch_size": 64, "solver.eval_every": 20,
        "solver.agents_hidden": [8, 8], "solver.market_hidden": [8, 8], "solver.nonlinear": "on",
    })


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread and one BLAS thread (numpy, for the oracles): small runs gain nothing from more, a
    shared machine loses much to contention, and float results are bitwise reproducible only for fixed
    thread counts (a subprocess with OMP_NUM_THREADS=1 computes the same bits)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)
