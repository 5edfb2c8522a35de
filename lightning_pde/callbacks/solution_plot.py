"""A picture of the solution at the end of fit: prediction, reference, absolute error, and the loss curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from lightning_pde.validation import nonempty_str, positive_int


class SolutionPlot(Callback):
    """Write a PNG of prediction, reference and |error| on the problem's evaluation grid, and the training loss
    against the step, when fit ends (rank 0 only).

    Problems with two inputs are drawn as images over the grid; others as prediction-against-reference scatter.

    Args:
        filename: PNG path; relative paths are under ``trainer.log_dir`` (or the working directory).
        log_every_n_steps: how often the loss curve records the training loss.
    """

    def __init__(self, filename: str = "solution.png", log_every_n_steps: int = 10) -> None:
        filename = nonempty_str("SolutionPlot", "filename", filename)
        log_every_n_steps = positive_int("SolutionPlot", "log_every_n_steps", log_every_n_steps)
        self.filename, self.log_every_n_steps = filename, log_every_n_steps
        self.loss_history: list[tuple[int, float]] = []
        self.path: Path | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step % self.log_every_n_steps == 0 and outputs is not None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.loss_history.append((trainer.global_step, float(loss)))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir is a broadcast under DDP: every rank must ask for it, before rank 0 goes on alone (asked
        # on rank 0 only, it waits forever for ranks that have left)
        log_dir = trainer.log_dir
        problem = getattr(pl_module, "problem", None)
        if not trainer.is_global_zero or problem is None or not problem.has_reference:
            return
        path = Path(self.filename)
        if not path.is_absolute():
            path = Path(log_dir or ".") / path
        self.path = plot_solution(pl_module, problem, path, self.loss_history)
        rank_zero_info(f"SolutionPlot: wrote {self.path}")

    def state_dict(self) -> dict[str, Any]:
        return {"loss_history": self.loss_history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss_history = [tuple(item) for item in state_dict["loss_history"]]


def plot_solution(module: pl.LightningModule, problem: Any, path: Path,
                  loss_history: list[tuple[int, float]] | None = None) -> Path:
    """Draw `module`'s solution of `problem` against its reference into `path` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = problem.evaluation_grid()
    with torch.no_grad():
        points = grid.points.to(device=module.device, dtype=module.dtype)
        prediction = torch.cat([module(chunk) for chunk in points.split(32768)]).double().cpu()
    reference = grid.values
    error = (prediction - reference).abs()
    rel_l2 = float(torch.linalg.norm(prediction - reference) / torch.linalg.norm(reference))

    panels = 4 if loss_history else 3
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), constrained_layout=True)
    names = problem.input_names
    if len(grid.shape) == 2 and problem.n_inputs == 2:
        extent = [float(problem.domain.lower[0]), float(problem.domain.upper[0]),
                  float(problem.domain.lower[1]), float(problem.domain.upper[1])]
        vmin, vmax = float(reference[:, 0].min()), float(reference[:, 0].max())
        for ax, values, title, limits in ((axes[0], prediction, "prediction", (vmin, vmax)),
                                          (axes[1], reference, "reference", (vmin, vmax)),
                                          (axes[2], error, "|error|", (None, None))):
            # The grid is 'ij' ordered (first input down the rows); show the first input along the vertical axis
            # of the transposed image so that the second input (often t) runs left to right.
            image = ax.imshow(values[:, 0].reshape(grid.shape).numpy(), origin="lower", aspect="auto",
                              extent=[extent[2], extent[3], extent[0], extent[1]], cmap="viridis" if
                              title != "|error|" else "magma", vmin=limits[0], vmax=limits[1])
            ax.set_xlabel(names[1])
            ax.set_ylabel(names[0])
            ax.set_title(title)
            fig.colorbar(image, ax=ax)
    else:
        axes[0].scatter(reference[:, 0], prediction[:, 0], s=2)
        axes[0].set_xlabel("reference")
        axes[0].set_ylabel("prediction")
        axes[1].hist(reference[:, 0].numpy(), bins=50)
        axes[1].set_title("reference values")
        axes[2].hist(error[:, 0].numpy(), bins=50, log=True)
        axes[2].set_title("|error|")
    if loss_history:
        steps, losses = zip(*loss_history)
        axes[3].semilogy(steps, losses)
        axes[3].set_xlabel("step")
        axes[3].set_title("training loss")
    fig.suptitle(f"{problem!r}: relative L2 error {rel_l2:.2e}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
