"""The data's own noise floor for the PID benchmarks' sliced Wasserstein distances (SWD).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/noise_floor.py

A sampler's SWD to a finite reference set is never zero: two independent draws of the data themselves are some
distance apart. A claim that one sampler beats another means something only when the gap is larger than the spread
of that distance. This script measures it at the sample sizes and projection count of ``benchmarks/pid.py``
(mixture: 4000 samples, reference seed 123; Poisson fields: 500 samples against the 500 validation fields) and
writes ``benchmarks/results/noise_floor.json`` (with commit, machine and threads) and prints a short table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from provenance import stamp

RESULTS = Path(__file__).resolve().parent / "results"


def swd(x: torch.Tensor, y: torch.Tensor) -> float:
    """SWD with benchmarks/pid.py's settings (512 projections, the metric's fixed seed)."""
    from lightning_pde.metrics import SlicedWassersteinDistance

    metric = SlicedWassersteinDistance(n_projections=512)
    metric.update(x, y)
    return float(metric.compute())


def summary(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values), "min": min(values),
            "max": max(values), "draws": len(values), "values": values}


def mixture_floor(draws: int) -> dict:
    """SWD between the reference draw of benchmarks/pid.py and `draws` independent draws of the same size."""
    from lightning_pde.diffusion import GaussianMixtureDenoiser

    data = GaussianMixtureDenoiser()
    reference = data.sample_data(4000, torch.Generator().manual_seed(123))
    values = [swd(data.sample_data(4000, torch.Generator().manual_seed(1000 + k)), reference) for k in range(draws)]
    return {"samples": 4000, **summary(values)}


def poisson_floor(draws: int) -> dict:
    """SWD between the 500 validation fields and `draws` disjoint blocks of 500 training fields."""
    from lightning_pde.data import PoissonFields

    data = PoissonFields(n=16, n_train=500 * draws, n_val=500)
    data.setup()
    reference = data.val
    values = [swd(data.train[500 * k:500 * (k + 1)], reference) for k in range(draws)]
    return {"samples": 500, **summary(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=10, help="independent draws per data set (default: 10)")
    parser.add_argument("--output", default=str(RESULTS / "noise_floor.json"))
    options = parser.parse_args()
    if options.draws < 2:
        parser.error(f"--draws must be >= 2 to give a spread, got {options.draws}")
    report = {**stamp(), "mixture": mixture_floor(options.draws), "poisson": poisson_floor(options.draws)}
    Path(options.output).write_text(json.dumps(report, indent=2))
    print(f"{'data':10s} {'samples':>7s} {'SWD mean':>9s} {'std':>7s} {'min':>7s} {'max':>7s} draws")
    for name in ("mixture", "poisson"):
        r = report[name]
        print(f"{name:10s} {r['samples']:7d} {r['mean']:9.4f} {r['std']:7.4f} {r['min']:7.4f} {r['max']:7.4f} "
              f"{r['draws']}")
    print(f"wrote {options.output} (threads={report['threads']})")


if __name__ == "__main__":
    main()
