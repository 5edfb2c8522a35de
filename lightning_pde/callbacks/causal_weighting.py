"""Causal training for time-dependent PINNs: later times count once earlier times are fitted."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from lightning_pde.validation import nonempty_str, positive_float, positive_int


class CausalWeighting(Callback):
    """Replace the PDE term's mean square by the causally weighted loss of Wang, Sankaran & Perdikaris (2022,
    arXiv 2203.07404, eq. 11): split [t_min, t_max] into `n_chunks` slabs, L_i = mean square residual in slab i,
    w_i = exp(-epsilon * sum_{k<i} L_k) (no gradient through w), loss = mean_i w_i L_i.

    The smallest weight is logged as ``causal/min_weight``: when it nears 1 the whole time interval is resolved
    (the paper raises epsilon then).

    Args:
        epsilon: causality parameter; larger waits longer for earlier times.
        n_chunks: number of time slabs.
        time_input: name of the time input.
        condition: the condition to weight (the PDE residual).
    """

    def __init__(self, epsilon: float = 1.0, n_chunks: int = 32, time_input: str = "t",
                 condition: str = "pde") -> None:
        epsilon = positive_float("CausalWeighting", "epsilon", epsilon)
        n_chunks = positive_int("CausalWeighting", "n_chunks", n_chunks)
        time_input = nonempty_str("CausalWeighting", "time_input", time_input)
        condition = nonempty_str("CausalWeighting", "condition", condition)
        self.epsilon, self.n_chunks, self.time_input, self.condition = epsilon, n_chunks, time_input, condition
        self.min_weight = 1.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        problem = pl_module.problem
        if self.time_input not in problem.input_names:
            raise ValueError(f"CausalWeighting: {problem.name} has no input {self.time_input!r}; inputs are "
                             f"{problem.input_names}")
        if self.condition not in pl_module.conditions:
            raise ValueError(f"CausalWeighting: {problem.name} has no condition {self.condition!r}; conditions are "
                             f"{sorted(pl_module.conditions)}")
        index = problem.input_names.index(self.time_input)
        self._index = index
        self._t_min = float(problem.domain.lower[index])
        self._t_max = float(problem.domain.upper[index])
        pl_module.reductions[self.condition] = self.reduce

    def reduce(self, residual: Tensor, points: Tensor) -> Tensor:
        """Causally weighted mean square of `residual` (N,) or (N, k) at `points` (N, n_inputs)."""
        t = points[:, self._index].detach()
        slab = ((t - self._t_min) / (self._t_max - self._t_min) * self.n_chunks).long().clamp(0, self.n_chunks - 1)
        square = residual.square().reshape(len(t), -1).mean(dim=1)
        total = torch.zeros(self.n_chunks, dtype=square.dtype, device=square.device).index_add(0, slab, square)
        count = torch.zeros(self.n_chunks, dtype=square.dtype, device=square.device).index_add(
            0, slab, torch.ones_like(square))
        losses = total / count.clamp_min(1)
        earlier = torch.cumsum(losses.detach(), 0) - losses.detach()
        weights = torch.exp(-self.epsilon * earlier)
        self.min_weight = float(weights.min())
        return (weights * losses).mean()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        pl_module.log("causal/min_weight", self.min_weight)
