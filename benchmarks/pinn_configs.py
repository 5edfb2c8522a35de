"""Fit the shipped PINN configs one after another and record error and wall time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pinn_configs.py configs/pinn/burgers.yaml configs/pinn/poisson2d.yaml

Writes ``benchmarks/results/pinn_configs.json`` and prints a table. One job at a time on an otherwise idle machine:
a second CPU-bound process on these 2 cores distorts small-op PyTorch timings badly.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

from lightning_pde.demo import fit_and_score
from provenance import stamp

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--output", default=str(RESULTS / "pinn_configs.json"))
    options = parser.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
    torch.set_num_threads(threads)
    rows = []
    for config in options.configs:
        with tempfile.TemporaryDirectory() as workdir:
            result = fit_and_score(config, workdir, ["--trainer.enable_progress_bar=false"])
        result.update(config=config, threads=threads)
        result.pop("checkpoint"), result.pop("picture")
        rows.append(result)
    report = {**stamp(threads), "results": rows}
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(json.dumps(report, indent=2))
    print(f"\n{'config':34s} {'rel L2':>10s} {'residual':>10s} {'fit s':>8s} {'steps':>7s} threads")
    for r in rows:
        print(f"{r['config']:34s} {r['rel_l2']:10.2e} {r['residual']:10.2e} {r['fit_seconds']:8.0f} "
              f"{r['steps']:7d} {r['threads']}")
    print(f"\nwrote {options.output}")


if __name__ == "__main__":
    main()
