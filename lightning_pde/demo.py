"""``make demo``: train the Burgers PINN of ``configs/pinn/burgers.yaml``, print its error and the picture's path.

Run as ``python -m lightning_pde.demo [--config PATH] [--output DIR] [--save-picture PNG]``. Everything the run
writes goes under DIR (default: a new temporary directory, printed), never into the working directory; the
README's picture of it is redrawn only when asked: ``--save-picture docs/images/burgers_pinn.png``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from lightning_pde import registry
from lightning_pde.callbacks import SolutionPlot
from lightning_pde.cli import LPDECLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def fit_and_score(config: str | Path, output: str | Path, overrides: list[str] | None = None) -> dict:
    """Fit the config with the `lpde` CLI's defaults, test it, and return what a reader wants to know."""
    registry.load_all()
    args = ["--config", str(config), f"--trainer.default_root_dir={output}", *(overrides or [])]
    cli = LPDECLI(run=False, args=args)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    (scores,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    saved = cli.trainer.checkpoint_callback
    return {
        "problem": repr(cli.model.problem),
        "rel_l2": scores["test/rel_l2"],
        "residual": scores["test/residual"],
        "fit_seconds": seconds,
        "steps": cli.trainer.global_step,
        "checkpoint": (saved.last_model_path or saved.best_model_path) if saved is not None else None,
        "picture": next((str(c.path) for c in cli.trainer.callbacks if isinstance(c, SolutionPlot)), None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIGS / "pinn" / "burgers.yaml"))
    parser.add_argument("--output", default=None,
                        help="directory for logs, checkpoint and PNG (default: a new temporary directory)")
    parser.add_argument("--save-picture", default=None, metavar="PNG", help="also copy the picture to PNG")
    options = parser.parse_args()
    output = options.output or tempfile.mkdtemp(prefix="lpde-demo-")
    result = fit_and_score(options.config, output, ["--trainer.enable_progress_bar=false"])
    if options.save_picture and result["picture"]:
        shutil.copyfile(result["picture"], options.save_picture)
    print(f"\n{result['problem']}")
    print(f"  relative L2 error vs reference: {result['rel_l2']:.3e}")
    print(f"  mean |PDE residual|:            {result['residual']:.3e}")
    print(f"  training time:                  {result['fit_seconds']:.0f} s ({result['steps']} steps)")
    print(f"  outputs:                        {output}")
    print(f"  checkpoint:                     {result['checkpoint']}")
    print(f"  picture:                        {result['picture']}")
    if options.save_picture:
        print(f"  picture copied to:              {options.save_picture}")


if __name__ == "__main__":
    main()
