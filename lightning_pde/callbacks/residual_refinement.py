"""Residual-based adaptive refinement (RAR): add collocation points where the PDE residual is largest."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from lightning_pde.validation import nonempty_str


class ResidualAdaptiveRefinement(Callback):
    """Every `every_n_epochs` epochs draw `n_candidates` points for a condition, evaluate its residual there and add
    the `n_add` worst to the training points (Lu et al. 2021, DeepXDE, arXiv 1907.04502, Procedure 2.2). The
    added points survive resampling and are saved with the data module's state. Each DDP rank refines its own
    shard of the candidates, so the ranks' added points stay disjoint.

    Args:
        every_n_epochs: epochs between refinements.
        n_candidates: candidate points per refinement (all ranks together).
        n_add: points added per refinement (all ranks together).
        condition: the condition to refine.
        max_added: stop refining once this many points were added on this rank.
    """

    def __init__(self, every_n_epochs: int = 10, n_candidates: int = 10000, n_add: int = 100,
                 condition: str = "pde", max_added: int = 10000) -> None:
        for name, value in (("every_n_epochs", every_n_epochs), ("n_candidates", n_candidates),
                            ("n_add", n_add), ("max_added", max_added)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ResidualAdaptiveRefinement: {name} must be an integer >= 1, got {value!r}")
        condition = nonempty_str("ResidualAdaptiveRefinement", "condition", condition)
        if n_add > n_candidates:
            raise ValueError(f"ResidualAdaptiveRefinement: n_add ({n_add}) must not exceed n_candidates "
                             f"({n_candidates})")
        self.every_n_epochs, self.n_candidates, self.n_add = every_n_epochs, n_candidates, n_add
        self.condition, self.max_added = condition, max_added
        self.refinements = 0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        datamodule = trainer.datamodule
        if not hasattr(datamodule, "add_points"):
            raise ValueError("ResidualAdaptiveRefinement needs a data module with add_points "
                             "(CollocationDataModule)")
        added = datamodule.added_points.get(self.condition)
        if added is not None and len(added) >= self.max_added:
            return
        condition = pl_module.conditions.get(self.condition)
        if condition is None or condition.n_values:
            # observations are given, not sampled: there are no candidate points to add
            raise ValueError(f"ResidualAdaptiveRefinement: condition must name a sampled condition of the problem, one "
                             f"of {sorted(k for k, c in pl_module.conditions.items() if not c.n_values)}, got "
                             f"{self.condition!r}")
        rank, world = trainer.global_rank, trainer.world_size
        generator = torch.Generator().manual_seed(10_000 + self.refinements)
        candidates = condition.sample(self.n_candidates, generator, "uniform")[rank::world]
        candidates = candidates.to(device=pl_module.device, dtype=pl_module.dtype)
        with torch.enable_grad():
            residual = condition.residual(pl_module.fields(candidates)).detach()
        score = residual.reshape(len(candidates), -1).abs().sum(dim=1)
        worst = torch.topk(score, min(max(self.n_add // world, 1), len(score))).indices
        datamodule.add_points(self.condition, candidates[worst])
        self.refinements += 1
        pl_module.log("rar/max_residual", float(score.max()))
        rank_zero_info(f"ResidualAdaptiveRefinement: added {len(worst)} points (max |residual| "
                       f"{float(score.max()):.2e})")

    def state_dict(self) -> dict[str, Any]:
        return {"refinements": self.refinements}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.refinements = int(state_dict["refinements"])
