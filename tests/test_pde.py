"""The two-agent PDE reference: against the Riccati oracle (q = 2), under refinement and the equilibrium gap
(q = 3/2), and the CLI's refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketeq import cli, load_scenario
from marketeq.gap import best_response_gap
from marketeq.metrics import oracle_errors
from marketeq.model.brownian import brownian_test_set
from marketeq.model.market import MarketModel
from marketeq.oracles import LeadingOrderOracle, PdeOracle, RiccatiOracle, reference_for
from marketeq.oracles.pde_grid import PdeGrid

E2 = Path(__file__).resolve().parents[1] / "scenarios" / "paper_e2_power_2_agents.toml"


@pytest.fixture(scope="module")
def e2():
    return load_scenario(E2)


def quadratic_cases(e2):
    """Three two-agent markets with different gamma, xi, lambda, T (and alpha)."""
    return {
        "E2 agents": e2.replace(**{"frictions.q": 2.0, "market.steps": 20}),
        "risk-averse agent 1": e2.replace(**{"frictions.q": 2.0, "frictions.lambda": 3e-3,
                                              "market.horizon": 0.2, "market.steps": 20},
                                           agents=[{"gamma": 2.0, "xi": -1.0}, {"gamma": 0.5, "xi": 1.0}]),
        "long horizon": e2.replace(**{"frictions.q": 2.0, "frictions.lambda": 3e-2, "market.horizon": 1.0,
                                      "market.steps": 25, "market.alpha": 0.8},
                                   agents=[{"gamma": 1.5, "xi": 5.0}, {"gamma": 1.0, "xi": -5.0}]),
    }


def errors_vs_riccati(scenario, grid: PdeGrid) -> dict[str, float]:
    model = MarketModel.from_scenario(scenario)
    test = brownian_test_set(0, 300, model.n_steps, model.dt)
    riccati = RiccatiOracle(model)
    errors = oracle_errors(model, PdeOracle(model, grid, rates="continuous").paths(test), riccati.paths(test),
                           riccati.s0)
    return {name: metric.value for name, metric in errors.items()}


@pytest.mark.parametrize("case", ["E2 agents", "risk-averse agent 1", "long horizon"])
def test_quadratic_cost_reproduces_the_riccati_oracle(e2, case):
    errors = errors_vs_riccati(quadratic_cases(e2)[case], PdeGrid(31, 11, 6))
    assert errors["oracle/sigma_sup_rel_error"] <= 1e-4
    assert errors["oracle/mu0_rel_error"] <= 1e-4 and errors["oracle/S0_abs_error"] <= 1e-4
    assert errors["oracle/rates_rel_mse"] <= 1e-4


def test_quadratic_errors_shrink_at_second_order_in_time(e2):
    scenario = quadratic_cases(e2)["E2 agents"]
    coarse, fine = (errors_vs_riccati(scenario, PdeGrid(31, 11, s)) for s in (2, 4))
    for name in ("oracle/sigma_sup_rel_error", "oracle/S0_abs_error"):
        assert 3.0 < coarse[name] / fine[name] < 5.0


@pytest.fixture(scope="module")
def power(e2):
    """E2 on 25 steps with its PDE reference on a small grid, and its leading-order approximation."""
    model = MarketModel.from_scenario(e2.replace(**{"market.steps": 25}))
    return model, PdeOracle(model, PdeGrid(61, 15, 2)), LeadingOrderOracle(model)


def test_power_cost_refinement_changes_little_and_sits_near_leading_order(power):
    """The coarse grids of a test; scripts/pde_convergence.py shows the default grid's changes."""
    model, oracle, leading = power
    finer = PdeOracle(model, PdeGrid(121, 15, 2))
    sigma0 = [float(o.solution.at(o.solution.sigma, 0, np.zeros(1), np.zeros(1))[0]) for o in (oracle, finer)]
    assert abs(sigma0[1] - sigma0[0]) < 2e-3 and abs(oracle.s0 - finer.s0) < 1e-4
    assert abs(sigma0[1] - leading.sigma) < 3e-3  # lambda = 1e-2 is small: the expansion is close
    paths = oracle.paths(brownian_test_set(0, 200, model.n_steps, model.dt))
    assert np.all(paths.phidot.sum(-1).numpy() == 0)
    distance = (paths.phi[..., 0] - model.phibar[0] + model.xi[0] * paths.W / model.alpha).numpy()
    towards = (paths.phidot[..., 0].numpy() * distance)[np.abs(distance) > 0.1] <= 0
    assert towards.mean() > 0.99  # towards its frictionless holding (the no-trade point sits a little off)
    assert np.allclose(paths.sigma[:, -1].numpy(), model.alpha, atol=1e-6)


@pytest.mark.parametrize("q, grid", [(2.0, PdeGrid(31, 11, 1)), (1.5, PdeGrid(61, 15, 2))])
def test_equilibrium_gap_at_the_pde_solution_is_zero(e2, q, grid):
    """On E2's own time grid (dt = 0.004): coarser steps leave an Euler gap (even at the Riccati oracle)."""
    model = MarketModel.from_scenario(e2.replace(**{"frictions.q": q}))
    oracle = PdeOracle(model, grid)
    train, test = (oracle.paths(brownian_test_set(seed, n, model.n_steps, model.dt)).numpy()
                   for seed, n in ((1, 600), (2, 1000)))
    report = best_response_gap(model, train, test, 40)
    assert abs(report.total_gap) <= 2 * report.total_gap_se
    assert abs(report.ratio) < 0.003  # the leading-order rates leave 1.2% of the gain on the table here


def test_reference_for_two_power_agents_is_the_pde(e2, monkeypatch):
    monkeypatch.setattr(PdeOracle, "__init__", lambda self, model, grid=None: setattr(self, "grid", grid))
    assert isinstance(reference_for(MarketModel.from_scenario(e2)), PdeOracle)


@pytest.mark.parametrize("args, field", [
    (["QUICKSTART", "--method", "pde"], "--method"),
    ([str(E2), "--grid", "11", "41"], "--grid"),
    ([str(E2), "--grid", "401", "41", "0"], "--grid"),
    ([str(E2), "--grid", "401"], "--grid"),
    ([str(E2), "--method", "leading-order", "--grid", "101", "21"], "--grid"),
])
def test_bad_grids_and_more_than_two_agents_are_one_line_and_exit_2(args, field, capsys):
    quickstart = str(E2.parent / "quickstart.toml")
    code = cli.main(["oracle", *[quickstart if a == "QUICKSTART" else a for a in args]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"marketeq: {field} = ")
