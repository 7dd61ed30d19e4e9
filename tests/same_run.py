"""The one definition of "the same run", shared by the checkpoint and the interrupt tests."""

from __future__ import annotations

import numpy as np

import marketeq


def assert_same_run(got: marketeq.RunResult, want: marketeq.RunResult) -> None:
    """Bitwise the same weights, metrics and history (wall-clock columns aside)."""
    assert got.status == want.status == "completed"
    for net, params in want.weights.items():
        for key, value in params.items():
            np.testing.assert_array_equal(got.weights[net][key], value, err_msg=f"{net}/{key}")
    assert list(got.metrics) == list(want.metrics)
    np.testing.assert_equal([tuple(m) for m in got.metrics.values()],
                            [tuple(m) for m in want.metrics.values()])
    assert list(got.history) == list(want.history)
    for key, column in want.history.items():
        if key != "run/elapsed_s":
            np.testing.assert_array_equal(got.history[key], column, err_msg=key)
