"""Adaptive loss weights that balance the gradient norms of the loss terms."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from lightning_pde.validation import nonnegative_float, positive_float, positive_int


class GradientNormWeighting(Callback):
    """Every `update_every` steps set each condition's weight so that all weighted terms have gradients of the same
    norm: lambda_i_hat = sum_j ||grad L_j|| / ||grad L_i||, smoothed as lambda_i <- alpha lambda_i +
    (1 - alpha) lambda_i_hat (Wang, Teng & Perdikaris 2021, arXiv 2001.04536, Alg. 1; the norm form of Wang et al.
    2023, arXiv 2308.08468, eq. 5.2). Weights are logged as ``weights/<condition>``.

    Args:
        update_every: optimizer steps between updates.
        alpha: smoothing of the running weights, in [0, 1).
        max_weight: upper bound on any weight, against blow-up when one term's gradient vanishes.
    """

    def __init__(self, update_every: int = 100, alpha: float = 0.9, max_weight: float = 1e4) -> None:
        update_every = positive_int("GradientNormWeighting", "update_every", update_every)
        if not nonnegative_float("GradientNormWeighting", "alpha", alpha) < 1:
            raise ValueError(f"GradientNormWeighting: alpha must be in [0, 1), got {alpha!r}")
        max_weight = positive_float("GradientNormWeighting", "max_weight", max_weight)
        self.update_every, self.alpha, self.max_weight = update_every, alpha, max_weight
        self.weights: dict[str, float] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.weights:  # resumed
            pl_module.loss_weights.update(self.weights)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.global_step % self.update_every:
            return
        parameters = [p for p in pl_module.parameters() if p.requires_grad]
        norms = {}
        for name, loss in pl_module.condition_losses(batch).items():
            grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
            norms[name] = torch.sqrt(sum(g.square().sum() for g in grads if g is not None))
        # Under DDP the ranks see different points; average so every rank uses the same weights.
        names = sorted(norms)
        stacked = trainer.strategy.reduce(torch.stack([norms[n] for n in names]), reduce_op="mean")
        total = float(stacked.sum())
        for name, norm in zip(names, stacked.tolist()):
            target = min(total / max(norm, 1e-30), self.max_weight)
            previous = pl_module.loss_weights[name]
            pl_module.loss_weights[name] = self.alpha * previous + (1 - self.alpha) * target
        self.weights = dict(pl_module.loss_weights)
        pl_module.log_dict({f"weights/{k}": v for k, v in self.weights.items()})

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.weights = dict(state_dict["weights"])
