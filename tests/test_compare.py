"""Several methods on one scenario: baselines behind the solver interface, divergence reported, the table."""

from __future__ import annotations

import numpy as np
import pytest

import marketeq
from marketeq.compare import add_gap, compare, parse_methods, plot_comparison, table_rows
from marketeq.hdf5 import read_comparison, read_result, write_comparison
from marketeq.scenario import ScenarioError


@pytest.fixture(scope="module")
def short(request):
    tiny = request.getfixturevalue("tiny")
    return tiny.replace(**{"solver.rounds": 1, "solver.agents_iterations": [40],
                           "solver.market_iterations": [40], "run.test_paths": 200})


def test_methods_share_test_paths_and_a_failure_does_not_stop_the_rest(short, tmp_path, monkeypatch):
    from marketeq.solvers.fbsde import FBSDESolver

    real_step = FBSDESolver._step

    def blows_up(self, optimizer, clearing_weight):  # from iteration 10 on, as a diverging FBSDE does
        logs = real_step(self, optimizer, clearing_weight)
        return {**logs, "joint/loss": logs["joint/loss"] * float("nan")} if self.step >= 10 else logs

    monkeypatch.setattr(FBSDESolver, "_step", blows_up)
    results = compare(short, ["fbsde", "joint", "oracle"], gap_iterations=0)
    assert results["fbsde"].status == "diverged" and "diverged at iteration" in results["fbsde"].message
    assert results["fbsde"].metrics == {}
    add_gap(results["fbsde"], 5)  # a diverged run's market is no answer: nothing to exploit
    assert results["fbsde"].metrics == {}
    assert results["joint"].status in ("completed", "diverged") and results["oracle"].status == "completed"
    np.testing.assert_array_equal(results["joint"].paths.W, results["oracle"].paths.W)
    out = write_comparison(results, tmp_path / "cmp.h5")
    back = read_comparison(out)
    assert list(back) == ["fbsde", "joint", "oracle"] and back["fbsde"].status == "diverged"
    assert read_result(out, method="oracle").metrics["S0"].value == results["oracle"].metrics["S0"].value
    with pytest.raises(marketeq.ResultFileError, match="choose one with --method"):
        read_result(out)
    rows = table_rows(results)
    assert [r[0] for r in rows] == ["fbsde", "joint", "oracle"] and rows[0][2] == "—"
    pngs = plot_comparison(results, tmp_path / "cmp")
    assert [p.name for p in pngs] == ["cmp_sigma.png", "cmp_mu.png", "cmp_phidot.png", "cmp_phi.png"]
    assert all(p.stat().st_size > 5000 for p in pngs)


def test_known_mu_is_left_out_where_the_identity_fails(short):
    power = short.replace(**{"frictions.q": 1.5})  # three agents, q != 2: no return identity
    results = compare(power, ["rlink-known", "oracle"], gap_iterations=0)
    assert results == {}


def test_gap_column_is_zero_at_the_oracle_and_positive_for_joint(short):
    results = compare(short, ["joint", "oracle"], gap_iterations=60)
    oracle_gap, joint_gap = results["oracle"].metrics["gap/total"], results["joint"].metrics["gap/total"]
    from marketeq.model.market import MarketModel
    from marketeq.oracles import RiccatiOracle
    from test_gap import lq_gap

    model = MarketModel.from_scenario(short)
    exact = sum(lq_gap(model, RiccatiOracle(model), n) for n in range(3))  # the 20-step grid's own gap, 3.9e-3
    assert -3 * oracle_gap.stderr < oracle_gap.value < exact + 3 * oracle_gap.stderr
    assert joint_gap.value > 3 * joint_gap.stderr  # jointly trained agents are not optimal price takers


def test_unknown_method_is_one_line():
    with pytest.raises(ScenarioError, match="--methods = 'rlink,gan': choose from rlink, "):
        parse_methods("rlink,gan")
