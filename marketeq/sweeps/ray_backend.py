"""The Ray backend: trials as Ray tasks, on a local Ray instance or an existing cluster.

The only module of marketeq that imports Ray (an optional extra: ``pip install 'marketeq[ray]'``). Each task
runs its trial in a temporary directory on whichever node it lands and returns the file's bytes, which this
process writes into the sweep directory: the nodes need marketeq installed, not a shared file system, and
every file still has one writer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from marketeq.files import write_bytes_atomically
from marketeq.sweeps.spec import Trial
from marketeq.sweeps.trial import record_failure, run_trial, trial_path

OnDone = Callable[[dict[str, Any]], None]


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the ray backend needs Ray: pip install 'marketeq[ray]' "
                             "(or use --backend local)") from None
    return ray


def _trial_in_tempdir(trial: Trial) -> tuple[dict[str, Any], bytes]:
    with tempfile.TemporaryDirectory(prefix="marketeq-trial-") as folder:
        row = run_trial(trial, folder)
        return row, trial_path(folder, trial).read_bytes()


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join the cluster at ``address``, or start a local instance; True when this call started Ray."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # A private instance on this machine: no dashboard, no token. Its workers import the same
            # marketeq as this process (a source checkout works without installing it) and run at normal
            # priority: Ray's default nice 15 starved them ~30x on a busy 2-core machine.
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            os.environ.setdefault("RAY_worker_niceness", "0")
            runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in _import_roots() if p)}}
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise RayUnavailable(f"cannot start or reach {where}: {' '.join(str(exc).split())}") from None
    return True


def _import_roots() -> list[str]:
    import marketeq

    return [str(Path(marketeq.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]


def run_ray(trials: Sequence[Trial], directory: str | os.PathLike[str], workers: int | None,
            address: str | None, on_done: OnDone) -> None:
    """Run ``trials`` as Ray tasks (one CPU each), calling ``on_done(row)`` here as each finishes."""
    ray = _import_ray()
    directory = Path(directory).resolve()
    started = _connect(ray, address, workers)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_trial_in_tempdir)
        pending = {task.remote(trial): trial for trial in trials}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                trial = pending.pop(ref)
                try:
                    row, data = ray.get(ref)
                except Exception as exc:  # the task's worker died or the node was lost
                    on_done(record_failure(trial, directory, exc))
                    continue
                write_bytes_atomically(trial_path(directory, trial), data)
                on_done(row)
    finally:
        if started:
            ray.shutdown()
