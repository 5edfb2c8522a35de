"""docs/geometry.md's tutorial, run as written: its problem file and config go into an empty directory, and `lpde fit`
trains the user's own class there (shortened only by command-line overrides), writes the unknown's convergence and
the picture, and leaves a checkpoint that reloads with the estimate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fenced(language: str) -> str:
    (block,) = re.findall(rf"```{language}\n(.*?)```", (ROOT / "docs" / "geometry.md").read_text(), flags=re.S)
    return block


def test_the_tutorial_problem_is_short_and_trains_through_the_cli(tmp_path):
    problem = fenced("python")
    assert len(problem.strip().splitlines()) < 40, "the tutorial promises a problem in under 40 lines"
    (tmp_path / "plate.py").write_text(problem)
    config = fenced("yaml")
    schedule = "switch_step: 1000, lbfgs_iterations: 2000"
    assert schedule in config
    (tmp_path / "plate.yaml").write_text(config.replace(schedule, "switch_step: 50, lbfgs_iterations: 100"))
    assert fenced("console").strip() == "lpde fit --config plate.yaml"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    shorten = ["--model.init_args.problem.init_args.n_pde=200", "--model.init_args.problem.init_args.n_boundary=64",
               "--trainer.max_steps=60", "--trainer.check_val_every_n_epoch=1",
               "--data.init_args.steps_per_epoch=20", "--trainer.enable_progress_bar=false",
               f"--trainer.default_root_dir={tmp_path / 'runs'}"]
    lpde = Path(sys.executable).with_name("lpde")
    result = subprocess.run([str(lpde), "fit", "--config", "plate.yaml", *shorten], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs"
    assert list(run.rglob("unknowns.png")) and list(run.rglob("solution.png"))
    (history,) = run.rglob("unknowns.csv")
    rows = history.read_text().splitlines()
    assert rows[0].split(",") == ["step", "k"] and float(rows[1].split(",")[1]) == 1.0
    final_k = float(rows[-1].split(",")[1])
    assert final_k > 1.2, f"k did not move towards 2 (from 1 to {final_k})"
    (checkpoint,) = run.rglob("last.ckpt")
    script = "import sys, lightning_pde; m = lightning_pde.load(sys.argv[1]); print(float(m.unknowns['k']))"
    loaded = subprocess.run([sys.executable, "-c", script, str(checkpoint)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert abs(float(loaded.stdout) - final_k) < 1e-6 * final_k  # the CSV holds it at float64 print precision
