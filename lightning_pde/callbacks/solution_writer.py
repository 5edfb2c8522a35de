"""Write `predict` results on the problem's evaluation grid to an `.npz` file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.utilities import rank_zero_info

from lightning_pde.validation import nonempty_str


class SolutionWriter(BasePredictionWriter):
    """Collect ``predict_step`` outputs and write them, rank 0 only, to `path` as an ``.npz`` with arrays
    ``points`` (N, n_inputs), ``u`` (N, n_outputs), ``grid_shape``, ``input_names``, ``output_names`` and, where the
    problem has one, ``reference`` (N, n_outputs). ``u.reshape(*grid_shape, -1)`` gives the solution on the grid.

    Args:
        path: output file; relative paths are under ``trainer.log_dir`` (or the working directory).
    """

    def __init__(self, path: str = "predictions.npz") -> None:
        super().__init__(write_interval="epoch")
        self.path = nonempty_str("SolutionWriter", "path", path)
        self.written: Path | None = None

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any,
                           batch_indices: Any) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: asked on every rank, before rank 0 goes on alone
        if trainer.global_rank != 0:
            return
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        arrays: dict[str, Any] = {
            "points": torch.cat([b["points"] for b in batches]).double().cpu().numpy(),
            "u": torch.cat([b["u"] for b in batches]).double().cpu().numpy(),
        }
        problem = getattr(pl_module, "problem", None)
        if problem is not None:
            arrays["input_names"] = np.array(problem.input_names)
            arrays["output_names"] = np.array(problem.output_names)
            if problem.has_reference:
                grid = problem.evaluation_grid()
                arrays["grid_shape"] = np.array(grid.shape, dtype=np.int64)
                arrays["reference"] = grid.values.numpy()
        path = Path(self.path)
        if not path.is_absolute():
            path = Path(log_dir or ".") / path
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
        self.written = path
        rank_zero_info(f"SolutionWriter: wrote {path}")
