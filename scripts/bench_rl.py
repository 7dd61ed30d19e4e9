"""Benchmark: stable-baselines3 learners against closed forms and against the pathwise learner.

    python scripts/bench_rl.py [--part tanh|loop|all] [--algos sac] [--loop-algos sac] [--timesteps 1000000]
                               [--seed 0] [--quick] [-o results/] [--record]

tanh: one agent facing constant mu and sigma = alpha with a quadratic cost (two agents with one gamma),
      whose optimum is the closed form rate = -kappa tanh(kappa (T-t)) (phi - target_t), kappa =
      sqrt(gamma alpha^2 / lambda). Trains an sb3 policy and reports the relative regret
      (J* - J_pi) / (J* - J_no_trade) on 3000 test paths (target: below 5%).
loop: scenarios/quickstart.toml solved by the rounds schedule (the one whose agents' phase is a learner) with the
      pathwise agents' phase (its default rounds) and with each sb3 agents' phase (with the schedule
      SB3_SCHEDULE below), side by side: sigma_t against the Riccati oracle (target:
      within 3%), the other oracle errors, and the wall time.
Runs one thing at a time with one torch thread. Exit code 1 when a target is missed. --quick: 50,000
transitions, 1000 test paths, the loop cut to two short rounds; the targets are printed but not enforced
(a check of the pipeline, not of the learners).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's marketeq, whatever is installed

from benchlib import QUICK, save_record  # noqa: E402

import marketeq  # noqa: E402
from marketeq.rl import oracle_market  # noqa: E402
from marketeq.rl.agent_training import evaluate_agent, train_agent  # noqa: E402

QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
REGRET_TARGET, SIGMA_TARGET = 0.05, 0.03
TANH_AGENTS = [{"gamma": 1.0, "xi": 5.0}, {"gamma": 1.0, "xi": -5.0}]  # kappa T = 2 on the quickstart market
# sb3 agents' phases: one iteration is one batch of whole episodes (64 paths for SAC/TD3, 512 for PPO); a
# long first phase learns the policy, shorter warm-started ones follow the market, the falling learning
# rate steadies the final policy.
SB3_SCHEDULE = {"solver.agents_iterations": [200, 100, 100, 100],
                "solver.agents_lr": [1e-3, 1e-3, 3e-4, 1e-4]}
QUICK_SB3_SCHEDULE = {"solver.agents_iterations": [20, 10], "solver.agents_lr": [1e-3, 3e-4]}
LOOP_METRICS = ["oracle/sigma_sup_rel_error", "oracle/mu0_rel_error", "oracle/S0_abs_error",
                "oracle/rates_rel_mse", "clearing", "sum_J"]


TABLES: list[dict] = []  # what --record writes to data/results/bench_rl.json


def tanh_benchmark(algo: str, args: argparse.Namespace) -> bool:
    scenario = marketeq.load_scenario(QUICKSTART).replace(
        name="tanh_single_agent", agents=TANH_AGENTS,
        **{"run.test_paths": 1000 if args.quick else 3000, "run.dtype": "float64", "run.device": "cpu",
           "run.seed": args.seed})
    market = oracle_market(scenario, "tanh")
    m = market.model
    kappa = (float(m.gamma[0]) * m.alpha**2 / m.cost.lam) ** 0.5
    started = time.perf_counter()
    _, policy = train_agent(market, 0, algo, args.timesteps, seed=args.seed)
    wall = time.perf_counter() - started
    report = evaluate_agent(market, 0, policy)
    span = report.equilibrium.value - report.no_trade.value
    regret, regret_se = report.relative_regret, report.policy_minus_equilibrium.stderr / span
    ok = regret < REGRET_TARGET
    print(f"\ntanh single agent, sb3:{algo}: gamma 1, xi 5, alpha {m.alpha}, lambda {m.cost.lam}, "
          f"T {m.horizon}, K {m.n_steps}, kappa T = {kappa * m.horizon:.3g}; {args.timesteps} transitions, "
          f"training {wall:.0f} s; {report.n_paths} test paths (seed {scenario.run.seed})")
    rows = (("J* (closed form)", report.equilibrium), (f"J_pi (sb3:{algo})", report.policy),
            ("J_no_trade", report.no_trade), ("J_pi - J* (paired)", report.policy_minus_equilibrium))
    for label, metric in rows:
        print(f"  {label:24s} {metric.value:12.6f} ± {metric.stderr:.2g}")
    print(f"  {'relative regret':24s} {regret:12.4f} ± {regret_se:.2g}   target < {REGRET_TARGET}  "
          f"{'ok' if ok else 'MISSED'}")
    TABLES.append({"caption": f"single agent, exogenous sigma, quadratic cost (kappa T = {kappa * m.horizon:.3g}): "
                              f"sb3:{algo}, {args.timesteps} transitions, training {wall:.0f} s, "
                              f"{report.n_paths} test paths",
                   "columns": ["quantity", "value", "± se"],
                   "rows": [[label, f"{metric.value:.6f}", f"{metric.stderr:.2g}"] for label, metric in rows]
                   + [["relative regret (J* - J_pi)/(J* - J_no_trade)", f"{regret:.4f}", f"{regret_se:.2g}"]]})
    return ok


def loop_run(learner: str, args: argparse.Namespace) -> marketeq.RunResult:
    quick = dict(QUICK) if args.quick else {}
    if learner != "pathwise":  # an sb3 agents' phase draws its own episodes: no pathwise batch to shrink
        quick.pop("solver.batch_size", None)
    changes = {"solver.schedule": "rounds", "solver.agent_learner": learner, **quick, **({} if learner == "pathwise" else schedule(args))}
    scenario = marketeq.load_scenario(QUICKSTART).replace(**changes)
    callbacks = [] if args.quiet else [marketeq.callbacks.ProgressBar()]
    result = marketeq.solve(scenario, callbacks, device="cpu", seed=args.seed)
    out = Path(args.output) / f"bench_rl_quickstart_{learner.replace(':', '_')}.h5"
    out.parent.mkdir(parents=True, exist_ok=True)
    marketeq.write_result(result, out)
    print(f"quickstart, agent_learner {learner}: {result.status}, {result.wall_time_s:.0f} s -> {out}")
    return result


def schedule(args: argparse.Namespace) -> dict[str, list[float]]:
    return QUICK_SB3_SCHEDULE if args.quick else SB3_SCHEDULE


def loop_benchmark(algos: list[str], args: argparse.Namespace) -> bool:
    learners = ["pathwise", *(f"sb3:{a}" for a in algos)]
    results = {learner: loop_run(learner, args) for learner in learners}
    print(f"\nquickstart ({results['pathwise'].scenario.solver.rounds} rounds), sb3 schedule "
          f"{schedule(args)}; {results['pathwise'].scenario.run.test_paths} test paths")
    print(f"  {'metric':28s}" + "".join(f"{learner:>22s}" for learner in learners))
    for name in LOOP_METRICS:
        cells = []
        for learner in learners:
            value, se = results[learner].metrics.get(name, marketeq.Metric(float("nan")))
            cells.append(f"{value:.4g}" + (f" ± {se:.1g}" if se == se else ""))
        print(f"  {name:28s}" + "".join(f"{cell:>22s}" for cell in cells))
    print(f"  {'wall time (s)':28s}" + "".join(f"{results[x].wall_time_s:22.0f}" for x in learners))
    TABLES.append({"caption": f"quickstart solved with each agents' learner (sb3 schedule {schedule(args)})",
                   "columns": ["metric", *learners],
                   "rows": [[name, *(f"{results[x].metrics[name].value:.4g}" for x in learners)]
                            for name in LOOP_METRICS]
                   + [["wall time (s)", *(f"{results[x].wall_time_s:.0f}" for x in learners)]]})
    ok = True
    for learner in learners[1:]:
        error = results[learner].metrics["oracle/sigma_sup_rel_error"].value
        passed = results[learner].status == "completed" and error < SIGMA_TARGET
        ok &= passed
        print(f"  {learner}: sigma within {error:.2%} of the Riccati oracle, target < {SIGMA_TARGET:.0%}  "
              f"{'ok' if passed else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["tanh", "loop", "all"], default="all")
    parser.add_argument("--algos", default="sac", help="comma-separated sb3 algorithms for the tanh problem")
    parser.add_argument("--loop-algos", default="sac", help="comma-separated sb3 algorithms for the loop")
    parser.add_argument("--timesteps", type=int, default=None, help="training transitions (tanh; default "
                        "1,000,000, --quick 50,000)")
    parser.add_argument("--quick", action="store_true", help="reduced settings; targets not enforced")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", default=str(ROOT / "results"))
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--record", action="store_true", help="write data/results/bench_rl.json")
    args = parser.parse_args()
    if args.timesteps is None:
        args.timesteps = 50_000 if args.quick else 1_000_000
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread, "
          f"torch {torch.__version__}, python {platform.python_version()}")
    ok = True
    if args.part in ("tanh", "all"):
        for algo in args.algos.split(","):
            ok &= tanh_benchmark(algo, args)
    if args.part in ("loop", "all"):
        ok &= loop_benchmark(args.loop_algos.split(","), args)
    print("\nall targets met" if ok else "\nsome targets missed")
    if args.record:
        path = save_record("bench_rl", "Reinforcement learning: stable-baselines3 agents", {"tables": TABLES},
                           seeds=[args.seed], quick=args.quick)
        print(f"recorded {path}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
