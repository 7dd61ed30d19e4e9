"""The quickstart on CPU and, where CUDA is present, on CUDA: do the two devices agree?

    python scripts/bench_device.py [--quick] [--seed 0] [-o results/] [--record]

1. Trains scenarios/quickstart.toml (float32) with the network (rounds) schedule on the CPU and evaluates it
   on its seeded test set. The networks are what a device changes: the default schedule solves quadratic costs
   exactly, in float64.
2. Replay (the agreement check): the CPU-trained networks are rebuilt on each device and evaluated on the same
   stored test increments; holdings, rates, mu_t, sigma_t and the price must agree with the CPU's stored paths
   within float32 tolerance (``RTOL``, ``ATOL`` relative to each quantity's scale). The CPU replay is the
   control: it checks that the rebuild itself reproduces the run.
3. Where CUDA is present, the quickstart is also trained on CUDA with the same seed, and both runs' metrics
   are printed side by side. Training is not bitwise reproducible across devices (different kernels and random
   streams), so those runs are compared with the oracle, not with each other.

Without CUDA (``torch.cuda.is_available()`` false) only the CPU runs, and the record says so: nothing here
claims a CUDA result that was not measured. ``--quick``: benchlib.QUICK (two short rounds, small batches,
300 test paths). Exit code 1 when a replay disagrees.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import QUICK, ROOT, save_record

import marketeq
from marketeq.api import build_solver
from marketeq.runtime import Runtime

QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
# float32 tolerance for 50 Euler steps of a small network: about 1e-7 per operation, grown along the path.
RTOL, ATOL = 1e-4, 1e-5
QUANTITIES = ("phi", "phidot", "mu", "sigma", "S")
METRICS = (
    "sigma0",
    "mu0",
    "S0",
    "clearing",
    "terminal",
    "oracle/sigma_sup_rel_error",
    "oracle/mu0_rel_error",
)


def replay(result: marketeq.RunResult, device: str) -> dict[str, np.ndarray]:
    """The result's trained networks rebuilt on ``device`` and evaluated on its stored test increments."""
    dtype = torch.float32 if result.provenance.get("dtype") == "float32" else torch.float64
    runtime = Runtime(torch.device(device), dtype, result.scenario.run.seed)
    with torch.random.fork_rng(devices=[]):  # building networks must not move the global generator
        solver = build_solver(result.scenario, runtime)
    solver.load_weights(result.weights)
    dW = torch.as_tensor(np.asarray(result.paths.dW), dtype=torch.float64)
    with torch.no_grad():
        paths = solver.evaluate(marketeq.Brownian.from_increments(dW).to(runtime.device, dtype)).numpy()
    return {name: np.asarray(getattr(paths, name), dtype=np.float64) for name in QUANTITIES}


def disagreement(result: marketeq.RunResult, again: dict[str, np.ndarray]) -> dict[str, float]:
    """Per quantity: the largest |difference| in units of the float32 tolerance (<= 1 agrees)."""
    out = {}
    for name in QUANTITIES:
        ref = np.asarray(getattr(result.paths, name), dtype=np.float64)
        allowed = RTOL * np.abs(ref) + ATOL * max(float(np.abs(ref).max()), 1e-12)
        out[name] = (
            float(np.max(np.abs(again[name] - ref) / allowed))
            if again[name].shape == ref.shape
            else float("inf")
        )
    return out


def train(scenario: marketeq.Scenario, device: str, seed: int, output: Path) -> marketeq.RunResult:
    started = time.perf_counter()
    result = marketeq.solve(scenario, device=device, seed=seed)
    out = output / f"bench_device_{device}.h5"
    out.parent.mkdir(parents=True, exist_ok=True)
    marketeq.write_result(result, out)
    print(
        f"quickstart on {device}: {result.status} in {time.perf_counter() - started:.0f} s, "
        f"{result.provenance['device']}, {result.provenance['dtype']} -> {out}",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="benchlib.QUICK: two short rounds, small batches"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "results")
    parser.add_argument("--record", action="store_true", help="write data/results/bench_device.json")
    args = parser.parse_args()
    scenario = marketeq.load_scenario(QUICKSTART).replace(
        **{"run.dtype": "float32", "solver.schedule": "rounds", **(QUICK if args.quick else {})}
    )
    cuda = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if cuda else ["cpu"]
    print(
        f"torch {torch.__version__}; CUDA available: {cuda}"
        + (f" ({torch.cuda.get_device_name(0)})" if cuda else ""),
        flush=True,
    )
    runs = {device: train(scenario, device, args.seed, args.output) for device in devices}
    cpu = runs["cpu"]
    ok, rows = True, []
    for device in devices:
        worst = disagreement(cpu, replay(cpu, device))
        agrees = all(v <= 1.0 for v in worst.values())
        ok &= agrees
        print(
            f"replay of the CPU-trained networks on {device}: "
            + ", ".join(f"{k} {v:.2g}" for k, v in worst.items())
            + f" (max |diff| / tolerance; {'agrees' if agrees else 'DISAGREES'})"
        )
        rows.append(
            [
                f"replay on {device}",
                *(f"{worst[k]:.2g}" for k in QUANTITIES),
                "agrees" if agrees else "DISAGREES",
            ]
        )
    print(f"{'metric':28s}" + "".join(f"{d:>14s}" for d in devices))
    metric_rows = [
        [name, *(f"{runs[d].metrics[name].value:.5g}" if name in runs[d].metrics else "—" for d in devices)]
        for name in METRICS
    ]
    for row in metric_rows:
        print(f"{row[0]:28s}" + "".join(f"{cell:>14s}" for cell in row[1:]))
    verified = (
        "CPU and CUDA" if cuda else "CPU only: this machine has no CUDA device, so nothing was run on CUDA"
    )
    print(f"verified here: {verified}")
    if args.record:
        path = save_record(
            "bench_device",
            "Devices: the quickstart on CPU and CUDA",
            {
                "cuda_available": cuda,
                "devices_run": devices,
                "tables": [
                    {
                        "caption": f"replay of the CPU-trained quickstart on each device: max |difference| "
                        f"over "
                        f"the test paths in units of the float32 tolerance (rtol {RTOL:g}, atol "
                        f"{ATOL:g} x scale); <= 1 agrees",
                        "columns": ["check", *QUANTITIES, "verdict"],
                        "rows": rows,
                    },
                    {
                        "caption": "each device's own training run (same seed), metrics on the test set",
                        "columns": ["metric", *devices],
                        "rows": metric_rows,
                    },
                ],
                "notes": [f"verified on this machine: {verified}."],
            },
            seeds=[args.seed],
            per_seed={
                args.seed: {
                    d: {k: [m.value, m.stderr] for k, m in r.metrics.items()} for d, r in runs.items()
                }
            },
            quick=args.quick,
        )
        print(f"recorded {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
