"""Markets for the RL tests: the single-agent tanh problem and the quickstart market on a coarse grid."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tanh_scenario(quickstart):
    """Two agents with one gamma: each faces constant mu and sigma = alpha; the tanh feedback is optimal."""
    return quickstart.replace(agents=[{"gamma": 1.0, "xi": 5.0}, {"gamma": 1.0, "xi": -5.0}], **{
        "market.steps": 20, "run.test_paths": 1000, "run.dtype": "float64", "run.device": "cpu"})


@pytest.fixture(scope="session")
def tanh_market(tanh_scenario):
    from marketeq.rl import oracle_market

    return oracle_market(tanh_scenario, "tanh")


@pytest.fixture(scope="session")
def riccati_market(tiny):
    from marketeq.rl import oracle_market

    return oracle_market(tiny)
