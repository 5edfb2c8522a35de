"""Mean absolute PDE residual."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class PDEResidual(Metric):
    """Mean of |residual| over every point seen (and every DDP rank)."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("abs_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, residual: Tensor) -> None:
        """`residual` of any shape; every entry counts once."""
        self.abs_sum += residual.detach().double().abs().sum()
        self.count += residual.numel()

    def compute(self) -> Tensor:
        return self.abs_sum / self.count
