"""Does Stein's estimator train as well as exact derivatives? Poisson2D, tanh MLP 64 x 3, the same points and steps
for reverse-mode autograd, Stein (K pairs, sigma 0.01) with the plain loss mean(r_hat^2), and Stein(debias=True).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stein_debias.py --steps 2000

Writes benchmarks/results/stein_debias.json and prints the relative L2 error at quarter points of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from lightning_pde.data import CollocationDataModule
from lightning_pde.derivatives import Autograd, Stein
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Poisson2D
from provenance import stamp

RESULTS = Path(__file__).resolve().parent / "results"


def train(mode: str, steps: int, samples: int) -> list[dict]:
    """Adam with a linearly decaying rate, 100 + 100 points redrawn every step; the error at each quarter."""
    torch.manual_seed(0)
    engine = Autograd() if mode == "autograd" else Stein(samples=samples, sigma=0.01, debias=mode == "debias")
    problem = Poisson2D(n_pde=100, n_boundary=100)
    model = PINN(problem, MLP(hidden=[64, 64, 64], activation="tanh"), derivatives=engine, fused=False,
                 loss_weights={"boundary": 100.0})
    data = CollocationDataModule(sampling="uniform", seed=0, resample_every=1)
    data.problem = problem
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / (steps + 1))
    grid = problem.evaluation_grid()
    points, exact = grid.points.float(), grid.values.float().reshape(-1, 1)
    rows, start = [], time.perf_counter()
    for step in range(steps):
        losses = model.losses(data.sample(step))
        loss = sum(model.loss_weights[name] * value for name, value in losses.items())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % max(steps // 4, 1) == 0:
            with torch.no_grad():
                error = float((model(points).reshape(exact.shape) - exact).norm() / exact.norm())
            rows.append({"step": step + 1, "rel_l2": error, "seconds": time.perf_counter() - start})
            print(f"{mode:9s} step {step + 1:5d} rel L2 {error:.3e}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=32, help="Stein's antithetic pairs K")
    parser.add_argument("--output", default=str(RESULTS / "stein_debias.json"))
    options = parser.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    runs = {mode: train(mode, options.steps, options.samples) for mode in ("autograd", "plain", "debias")}
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(json.dumps({**stamp(threads), "steps": options.steps,
                                                "samples": options.samples, "runs": runs}, indent=2))
    print(f"\n{'step':>6s} " + " ".join(f"{m:>10s}" for m in runs))
    for i, row in enumerate(runs["autograd"]):
        print(f"{row['step']:6d} " + " ".join(f"{runs[m][i]['rel_l2']:10.2e}" for m in runs))
    print(f"\nwrote {options.output} ({threads} thread(s))")


if __name__ == "__main__":
    main()
