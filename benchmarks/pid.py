"""PID / PIDDM benchmark: trains the configs/pid set through the CLI (timed), then measures teacher quality at
several Heun step counts, one-step student quality, sampling times, PDE residuals and the forward problem.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pid.py            # train what is missing, then evaluate
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pid.py --retrain  # train every config again

Writes benchmarks/results/pid.json and prints a table. Checkpoints go to checkpoints/pid/.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["mixture_pid", "mixture_teacher", "poisson_teacher", "poisson_pid", "poisson_piddm"]


def train(name: str) -> float:
    from lightning_pde.cli import main

    start = time.perf_counter()
    main(["fit", "--config", str(ROOT / "configs" / "pid" / f"{name}.yaml"), "--trainer.enable_progress_bar=false"])
    return time.perf_counter() - start


def timed(fn, repeats: int = 3):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return out, (time.perf_counter() - start) / repeats


def swd(x: torch.Tensor, y: torch.Tensor) -> float:
    from lightning_pde.metrics import SlicedWassersteinDistance

    metric = SlicedWassersteinDistance(n_projections=512)
    metric.update(x, y)
    return float(metric.compute())


def mixture(results: dict) -> None:
    import lightning_pde

    student = lightning_pde.load(ROOT / "checkpoints" / "pid" / "mixture_pid.ckpt")
    teacher = student.teacher
    data = teacher.sample_data(4000, torch.Generator().manual_seed(123))
    rows = {}
    for steps in (5, 10, 18, 35):
        samples, seconds = timed(lambda: teacher.sample(4000, steps, torch.Generator().manual_seed(7)))
        rows[f"teacher_heun{steps}"] = {"swd": swd(samples, data), "nfe": 2 * steps - 1, "seconds": seconds}
    samples, seconds = timed(lambda: student.sample(4000, generator=torch.Generator().manual_seed(7)))
    rows["pid_student"] = {"swd": swd(samples, data), "nfe": 1, "seconds": seconds}
    # The learned EDM teacher of configs/pid/mixture_teacher.yaml (the student's MLP size), Heun 35 and 18.
    learned = lightning_pde.load(ROOT / "checkpoints" / "pid" / "mixture_teacher.ckpt")
    for steps in (18, 35):
        samples, seconds = timed(lambda: learned.sample(4000, steps, torch.Generator().manual_seed(7)))
        rows[f"learned_teacher_heun{steps}"] = {"swd": swd(samples, data), "nfe": 2 * steps - 1,
                                                "seconds": seconds}
    rows["swd_ratio_student_vs_heun35"] = rows["pid_student"]["swd"] / rows["teacher_heun35"]["swd"]
    rows["speedup_vs_analytic_heun35"] = rows["teacher_heun35"]["seconds"] / rows["pid_student"]["seconds"]
    rows["speedup_vs_learned_heun35"] = rows["learned_teacher_heun35"]["seconds"] / rows["pid_student"]["seconds"]
    rows["swd_ratio_student_vs_learned_heun35"] = rows["pid_student"]["swd"] / rows["learned_teacher_heun35"]["swd"]
    results["mixture"] = rows


def moments(samples: torch.Tensor, data: torch.Tensor) -> dict:
    return {"mmse": float(((samples.mean(0) - data.mean(0)) ** 2).mean() / data.var(0).mean()),
            "smse": float(((samples.std(0) - data.std(0)) ** 2).mean() / data.var(0).mean())}


def poisson(results: dict) -> None:
    import lightning_pde
    from lightning_pde.data import PoissonFields
    from lightning_pde.data.poisson_fields import relative_residual, solve_poisson

    data = PoissonFields(n=16, n_train=4000, n_val=500)
    data.setup()
    reference = data.val
    teacher = lightning_pde.load(ROOT / "checkpoints" / "pid" / "poisson_teacher.ckpt")
    pid = lightning_pde.load(ROOT / "checkpoints" / "pid" / "poisson_pid.ckpt")
    piddm = lightning_pde.load(ROOT / "checkpoints" / "pid" / "poisson_piddm.ckpt")
    rows = {"data": {"residual": float(relative_residual(reference.double()).mean())}}

    def score(samples, seconds, nfe):
        return {"residual": float(relative_residual(samples.double()).mean()), "swd": swd(samples, reference),
                **moments(samples, reference), "nfe": nfe, "seconds": seconds}

    for steps in (5, 10, 18, 35):
        samples, seconds = timed(lambda: teacher.sample(500, steps, torch.Generator().manual_seed(7)), repeats=1)
        rows[f"teacher_heun{steps}"] = score(samples, seconds, 2 * steps - 1)
    for name, model in (("pid_student", pid), ("piddm_student", piddm)):
        samples, seconds = timed(lambda: model.sample(500, generator=torch.Generator().manual_seed(7)))
        rows[name] = score(samples, seconds, 1)
    for steps in (18, 35):
        rows[f"piddm_residual_over_teacher_heun{steps}"] = (rows["piddm_student"]["residual"]
                                                            / rows[f"teacher_heun{steps}"]["residual"])
    # forward problem: a observed, u generated; error against the exact FD solve
    fields = reference[:100]
    mask = torch.zeros(1, 2, 1, 1)
    mask[:, 0] = 1.0
    start = time.perf_counter()
    solved = piddm.solve(fields, mask, steps=300, lr=0.05, lam=10.0, generator=torch.Generator().manual_seed(0))
    seconds = time.perf_counter() - start
    exact = torch.from_numpy(solve_poisson(fields[:, 0].double().numpy())).float()
    error = ((solved[:, 1] - exact).flatten(1).norm(dim=1) / exact.flatten(1).norm(dim=1)).mean()
    rows["forward_problem"] = {"relative_l2_u_mean": float(error), "residual": float(
        relative_residual(solved.double()).mean()), "samples": 100, "adam_steps": 300, "seconds": seconds}
    results["poisson"] = rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true", help="train every config again")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "pid.json"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    results: dict = {"threads": torch.get_num_threads(), "train_seconds": {}}
    for name in CONFIGS:
        if args.retrain or not (ROOT / "checkpoints" / "pid" / f"{name}.ckpt").is_file():
            ckpt = ROOT / "checkpoints" / "pid" / f"{name}.ckpt"
            ckpt.unlink(missing_ok=True)
            results["train_seconds"][name] = train(name)
            print(f"trained {name} in {results['train_seconds'][name]:.1f} s", flush=True)
    results["train_seconds_total"] = sum(results["train_seconds"].values())
    mixture(results)
    poisson(results)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(f"threads {results['threads']}; training seconds {results['train_seconds']}")
    for section in ("mixture", "poisson"):
        print(f"\n{section}")
        for key, row in results[section].items():
            if isinstance(row, dict):
                print(f"  {key:34s} " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                   for k, v in row.items()))
            else:
                print(f"  {key:34s} {row:.4g}")


if __name__ == "__main__":
    main()
