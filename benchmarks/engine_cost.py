"""Cost of one loss-and-gradient evaluation per derivative engine on the PINNacle problems, with and without their
hard constraints: why configs/pinnacle/ use Autograd for the small-network recipe.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/engine_cost.py --output benchmarks/results/engine_cost.json

Each case builds a PINN on a 3 x 32 tanh MLP in float64 with the problem's default point counts as the configs set
them, draws one batch from CollocationDataModule, and times ``sum(condition_losses(batch)).backward()`` (median of
`--repeats` after one warm-up). Uncompiled: torch.compile cannot compile Autograd, so this compares like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from provenance import stamp

ROOT = Path(__file__).resolve().parents[1]


def cases():
    from lightning_pde.problems.lid_driven_cavity import LidDrivenCavity
    from lightning_pde.problems.poisson_holes import PoissonHoles
    from lightning_pde.problems.poisson_inverse import PoissonInverse
    from lightning_pde.problems.wave import Wave1D

    return {"wave1d_c": (lambda: Wave1D(n_pde=2000), (True, False)),
            "poisson_inv": (lambda: PoissonInverse(n_pde=1000), (True,)),
            "ns2d_c": (lambda: LidDrivenCavity(nu=0.01, lid=4.0, n_pde=2000), (True, False)),
            "poisson2d_c": (lambda: PoissonHoles(n_pde=2000), (False,))}


def seconds_per_evaluation(problem, engine, hard: bool, repeats: int) -> float:
    import torch

    from lightning_pde.data.collocation import CollocationDataModule
    from lightning_pde.modules.pinn import PINN
    from lightning_pde.nn.mlp import MLP

    torch.manual_seed(0)
    module = PINN(problem=problem, net=MLP([32, 32, 32]), derivatives=engine(), hard_constraints=hard).double()
    data = CollocationDataModule()
    data.problem = module.problem
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        sum(module.condition_losses(batch).values()).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "engine_cost.json"))
    options = parser.parse_args()
    import torch

    from lightning_pde.derivatives import Autograd, SinglePass

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    report = {**stamp(threads), "what": "seconds per loss-and-gradient evaluation, median", "results": []}
    print(f"{'task':12s} {'hard':>5s} {'SinglePass s':>12s} {'Autograd s':>11s} {'ratio':>6s}")
    for task, (build, hards) in cases().items():
        for hard in hards:
            single = seconds_per_evaluation(build(), SinglePass, hard, options.repeats)
            reverse = seconds_per_evaluation(build(), Autograd, hard, options.repeats)
            report["results"].append({"task": task, "hard_constraints": hard, "singlepass_s": single,
                                      "autograd_s": reverse, "ratio": single / reverse})
            print(f"{task:12s} {str(hard):>5s} {single:12.4f} {reverse:11.4f} {single / reverse:6.2f}", flush=True)
    Path(options.output).write_text(json.dumps(report, indent=2))
    print(f"wrote {options.output} (threads={threads})")


if __name__ == "__main__":
    main()
