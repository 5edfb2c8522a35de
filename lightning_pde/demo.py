"""``make demo``: train the Burgers PINN of ``configs/pinn/burgers.yaml``, print its error and the picture's path.

Run as ``python -m lightning_pde.demo [--config PATH] [--output DIR]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lightning_pde import registry
from lightning_pde.callbacks import SolutionPlot
from lightning_pde.cli import LPDECLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIGS / "pinn" / "burgers.yaml"))
    parser.add_argument("--output", default="demo_output", help="directory for logs, checkpoint and PNG")
    options = parser.parse_args()
    registry.load_all()
    cli = LPDECLI(run=False, args=["--config", options.config, f"--trainer.default_root_dir={options.output}"])
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    (scores,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    plot = next((c.path for c in cli.trainer.callbacks if isinstance(c, SolutionPlot)), None)
    print(f"\n{cli.model.problem!r}")
    print(f"  relative L2 error vs reference: {scores['test/rel_l2']:.3e}")
    print(f"  mean |PDE residual|:            {scores['test/residual']:.3e}")
    print(f"  training time:                  {seconds:.0f} s ({cli.trainer.global_step} steps)")
    print(f"  checkpoint:                     {cli.trainer.checkpoint_callback.best_model_path}")
    print(f"  picture:                        {plot}")


if __name__ == "__main__":
    main()
