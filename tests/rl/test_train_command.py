"""``marketeq train-agent``: the comparison table, the saved model, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from marketeq.cli import main
from marketeq.scenario import scenario_to_toml

ROOT = Path(__file__).resolve().parents[2]


def test_train_agent_reports_and_saves(tanh_scenario, tmp_path, capsys):
    from stable_baselines3 import SAC

    scenario_file = tmp_path / "tanh.toml"
    scenario_file.write_text(scenario_to_toml(tanh_scenario.replace(**{"run.test_paths": 200})))
    out = tmp_path / "agent.zip"
    code = main(["train-agent", str(scenario_file), "--agent", "2", "--timesteps", "2560", "-o", str(out),
                 "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "agent 2" in printed and "equilibrium" in printed and "no trading" in printed
    assert "200 test paths" in printed and "relative regret" in printed
    model = SAC.load(out, device="cpu")
    action, _ = model.predict(np.zeros(3, dtype=np.float32), deterministic=True)
    assert action.shape == (1,) and -1.0 <= float(action[0]) <= 1.0
    assert not list(tmp_path.glob(".agent.zip*"))  # no temporary file left behind


def test_train_agent_errors_are_one_line_with_exit_2(tmp_path, capsys):
    quickstart = str(ROOT / "scenarios" / "quickstart.toml")
    done = subprocess.run([sys.executable, "-m", "marketeq", "train-agent", quickstart, "--agent", "4"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--agent 4" in done.stderr, done.stderr
    assert "has 3 agents (cautious, balanced, bold); give 1..3" in done.stderr
    for args, words in [
        ((str(tmp_path / "missing.h5"),), "no such file"),
        ((quickstart, "--agent", "0"), "give 1..3"),
        ((quickstart, "--timesteps", "0"), "--timesteps 0"),
        ((quickstart, "-o", str(tmp_path / "no" / "dir.zip")), "does not exist"),
    ]:
        assert main(["train-agent", *args, "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("marketeq: ") and words in lines[0], lines
