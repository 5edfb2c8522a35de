"""Relative L2 error against an exact or reference solution."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class RelativeL2Error(Metric):
    """||prediction - target||_2 / ||target||_2 over every point seen (and every DDP rank).

    Sums of squares are accumulated in float64, so batching the evaluation grid does not change the result.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("error_sq", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("target_sq", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """`prediction` and `target` of the same shape, e.g. (N, n_outputs)."""
        if prediction.shape != target.shape:
            raise ValueError(f"RelativeL2Error: prediction {tuple(prediction.shape)} and target "
                             f"{tuple(target.shape)} differ in shape")
        prediction, target = prediction.detach().double(), target.detach().double()
        self.error_sq += ((prediction - target) ** 2).sum()
        self.target_sq += (target**2).sum()

    def compute(self) -> Tensor:
        return torch.sqrt(self.error_sq / self.target_sq)
