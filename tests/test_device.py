"""CPU and CUDA agree: a trained run replayed on each device gives the same paths within float32 tolerance."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import bench_device  # noqa: E402

import marketeq  # noqa: E402


@pytest.fixture(scope="module")
def trained(micro):
    """A float32 run on the CPU: the precision the device check is about."""
    return marketeq.solve(micro.replace(**{"run.dtype": "float32"}), device="cpu")


def test_replay_on_cpu_reproduces_the_stored_paths(trained):
    worst = bench_device.disagreement(trained, bench_device.replay(trained, "cpu"))
    assert set(worst) == set(bench_device.QUANTITIES)
    assert max(worst.values()) <= 1.0, worst


def test_disagreement_sees_a_change_beyond_float32_tolerance(trained):
    again = bench_device.replay(trained, "cpu")
    again["sigma"] = again["sigma"] * (1 + 1e-3)
    assert bench_device.disagreement(trained, again)["sigma"] > 1.0


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine: the CPU/CUDA agreement check needs a GPU",
)
def test_cuda_replay_agrees_with_cpu(trained):
    worst = bench_device.disagreement(trained, bench_device.replay(trained, "cuda"))
    assert max(worst.values()) <= 1.0, worst
    assert np.isfinite(list(worst.values())).all()
