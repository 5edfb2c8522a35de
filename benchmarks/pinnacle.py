"""Run the five PINNacle tasks (configs/pinnacle) as a user would, and print our L2RE beside PINNacle's.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pinnacle.py                     # all five, one after another
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pinnacle.py --only ns2d_c wave1d_c
    .venv/bin/python benchmarks/pinnacle.py --only wave1d_c --max-steps 3 --points 64 --output /tmp/p.json  # smoke

Each task is one ``lpde fit --config configs/pinnacle/<task>.yaml`` in a fresh process with one thread, timed from
outside (start-up, compilation, validation and checkpoints included), run one after another. Its ``last.ckpt`` is
then loaded (``lightning_pde.load``) and scored with PINNacle's metric, L2RE = ||U - U_ref|| / ||U_ref|| over every
reference point and every output column, against the problem's own reference (``evaluation_grid()``: PINNacle's
COMSOL file for NS2d-C and Poisson2d-C, the exact solution for Wave1d-C and PInv, Cole-Hopf for Burgers1d-C).
Burgers1d-C is also scored against PINNacle's COMSOL file at the file's 101 x 11 points; that file is itself
1.33e-2 from Cole-Hopf there, so it bounds what any solver can show against it.

Writes ``benchmarks/pinnacle.json``: provenance (commit, machine, threads, versions; ``benchmarks/provenance.py``)
and, per task, the command, the whole-process fit time, the L2RE(s), the optimizer steps and the load average around
the run (other jobs on the machine inflate the time, not the error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import stamp

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "pinnacle.json"
DATA = ROOT / "lightning_pde" / "reference" / "data" / "pinnacle"

#: task -> (config, PINNacle's name, what PINNacle reports: 20 000 Adam steps, 5 x 100 tanh network, GPU)
TASKS = {
    "burgers1d_c": ("configs/pinnacle/burgers1d_c.yaml", "Burgers1d-C", "about 1.4e-2 (best methods)"),
    "poisson2d_c": ("configs/pinnacle/poisson2d_c.yaml", "Poisson2d-C", "vanilla 0.69, best 1.2e-2 (NTK)"),
    "ns2d_c": ("configs/pinnacle/ns2d_c.yaml", "NS2d-C", "vanilla 4.7e-2, best 3.6e-2 (LAAF)"),
    "wave1d_c": ("configs/pinnacle/wave1d_c.yaml", "Wave1d-C", "vanilla 0.59, best 9.8e-2 (NTK)"),
    "poisson_inv": ("configs/pinnacle/poisson_inv.yaml", "PInv", "vanilla 9.4e-2"),
}
REPORTED_SOURCE = ("as reported in PINNacle's main table (arXiv 2306.08827), as third parties summarise it "
                   "(not yet checked against the paper); not re-run here")


def rel_l2(prediction, reference) -> float:
    """PINNacle's L2RE: Frobenius norm of the error over that of the reference, all columns together."""
    import torch

    return float(torch.linalg.norm(prediction - reference) / torch.linalg.norm(reference))


def predict(module, points):
    """The module's outputs (N, n_outputs) at float64 `points` (N, n_inputs), float64, in chunks."""
    import torch

    with torch.no_grad():
        return torch.cat([module(chunk.to(module.dtype)).double() for chunk in points.split(65536)])


def burgers_file_points():
    """PINNacle's COMSOL Burgers solution as (points (1111, 2) in (x, t), values (1111, 1))."""
    import torch

    from lightning_pde.reference import read_table

    table = read_table(DATA / "burgers1d.dat", columns=12)
    x, u = table[:, 0], table[:, 1:]
    t = torch.linspace(0, 1, u.shape[1], dtype=torch.float64)
    points = torch.stack(torch.meshgrid(x, t, indexing="ij"), dim=-1).reshape(-1, 2)
    return points, u.reshape(-1, 1)


def score(task: str, checkpoint: Path) -> dict:
    """L2RE of the checkpoint against its problem's reference (and, for Burgers, against PINNacle's file)."""
    import torch

    import lightning_pde

    module = lightning_pde.load(str(checkpoint)).eval()
    grid = module.problem.evaluation_grid()
    scores = {"rel_l2": rel_l2(predict(module, grid.points), grid.values),
              "reference": "Cole-Hopf" if task == "burgers1d_c" else
              ("PINNacle's COMSOL file" if task in ("ns2d_c", "poisson2d_c") else "exact solution"),
              "steps": int(torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"])}
    if module.problem.n_outputs > 1:
        error = predict(module, grid.points) - grid.values
        scores["rel_l2_per_output"] = {name: float(error[:, k].norm() / grid.values[:, k].norm())
                                       for k, name in enumerate(module.problem.output_names)}
    if task == "burgers1d_c":
        points, values = burgers_file_points()
        scores["rel_l2_pinnacle_file"] = rel_l2(predict(module, points), values)
    return scores


def find_checkpoint(directory: Path) -> Path:
    found = sorted(directory.rglob("last.ckpt")) or sorted(directory.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RuntimeError(f"the run under {directory} left no checkpoint")
    return found[-1]


def problem_count_args(config: str, points: int) -> list[str]:
    """``--model.init_args.problem.init_args.n_*=points`` for every point count the config's problem takes."""
    import yaml

    args = yaml.safe_load((ROOT / config).read_text())["model"]["init_args"]["problem"].get("init_args", {})
    return [f"--model.init_args.problem.init_args.{key}={points}" for key in args if key.startswith("n_")]


def measure(task: str, threads: int, max_steps: int | None, points: int | None) -> dict:
    config = TASKS[task][0]
    with tempfile.TemporaryDirectory(prefix=f"pinnacle_{task}_") as tmp:
        workdir = Path(tmp)
        overrides = [] if max_steps is None else [f"--trainer.max_steps={max_steps}"]
        overrides += [] if points is None else problem_count_args(config, points)
        command = [sys.executable, "-m", "lightning_pde", "fit", "--config", str(ROOT / config),
                   f"--trainer.default_root_dir={workdir}", "--trainer.enable_progress_bar=false", *overrides]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PL_DISABLE_TIPS": "1"}
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        load_after = os.getloadavg()[0]
        if result.returncode != 0:
            raise RuntimeError(f"{config}: lpde fit failed ({result.returncode}):\n{result.stderr[-3000:]}")
        scores = score(task, find_checkpoint(workdir))
    return {"task": task, "pinnacle_name": TASKS[task][1], "config": config,
            "command": " ".join(["lpde fit --config", config, *overrides]), "fit_process_seconds": seconds, **scores,
            "pinnacle_reported": TASKS[task][2], "load_average_before": load_before, "load_average_after": load_after}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(TASKS), help="run only these tasks")
    parser.add_argument("--max-steps", type=int, help="cap every run at this many optimizer steps (smoke runs)")
    parser.add_argument("--points", type=int, help="set every point count of every problem to this (smoke runs)")
    parser.add_argument("--output", default=str(OUTPUT), help="where to write the JSON (default: %(default)s)")
    options = parser.parse_args(argv)
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    report = {**stamp(threads), "metric": "L2RE = ||U - U_ref||_F / ||U_ref||_F over all points and outputs",
              "pinnacle_reported_source": REPORTED_SOURCE, "results": []}
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'task':12s} {'L2RE':>9s} {'vs file':>9s} {'fit s':>7s} {'steps':>6s} {'load':>5s}  PINNacle (reported)")
    for task in options.only or list(TASKS):
        result = measure(task, threads, options.max_steps, options.points)
        report["results"].append(result)
        versus_file = result.get("rel_l2_pinnacle_file")
        print(f"{TASKS[task][1]:12s} {result['rel_l2']:9.2e} {'' if versus_file is None else f'{versus_file:9.2e}':>9s} "
              f"{result['fit_process_seconds']:7.0f} {result['steps']:6d} {result['load_average_after']:5.2f}  "
              f"{result['pinnacle_reported']}", flush=True)
        output.write_text(json.dumps(report, indent=2))  # keep what is done if a later task fails
    print(f"\nL2RE against: Cole-Hopf (Burgers1d-C; 'vs file': PINNacle's COMSOL file), PINNacle's COMSOL files "
          f"(NS2d-C, Poisson2d-C), exact solutions (Wave1d-C, PInv). PINNacle's column: {REPORTED_SOURCE}.")
    print(f"wrote {output} (threads={threads}, commit {(report['commit'] or '')[:10]}"
          f"{', uncommitted changes' if report['dirty'] else ''})")


if __name__ == "__main__":
    main()
