"""Greedy parameter selection of GPT-PINN (Chen & Koohy, arXiv 2303.14878, Algorithm 1)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from lightning_pde.validation import nonnegative_float


class GreedyBasisSelection(pl.Callback):
    """After each neuron: solve the reduced model at every unselected training parameter (batched, sharded across
    DDP ranks and all-gathered, so every rank makes the same choice), log the largest loss, and make its argmax the
    next neuron's parameter; stop at ``model.max_neurons`` or when the largest loss is below `tolerance`.

    The indicator is the reduced model's own physics loss (no reference solution), as in the paper. With
    :class:`~lightning_pde.callbacks.CollocationDownsampling` the loss is the sparse S2GPT loss.

    Args:
        tolerance: stop once the largest loss falls below this (>= 0; 0 never stops early).
    """

    def __init__(self, tolerance: float = 0.0) -> None:
        self.tolerance = nonnegative_float("GreedyBasisSelection", "tolerance", tolerance)

    def candidate_losses(self, trainer: pl.Trainer, module: Any, candidates: torch.Tensor) -> torch.Tensor:
        """Loss (M,) of each candidate; rank r solves candidates r, r + world, ... and the results are gathered."""
        world, rank = max(trainer.world_size, 1), trainer.global_rank
        share = -(-len(candidates) // world)
        mine = torch.arange(rank, share * world, world, device=candidates.device)
        valid = mine < len(candidates)
        losses = candidates.new_full((share,), -1.0, dtype=torch.float64)  # on the module's device (NCCL gathers)
        chunk = module.candidate_chunk
        for start in range(0, share, chunk):
            idx = mine[start:start + chunk]
            ok = valid[start:start + chunk]
            if ok.any():
                _, loss = module.solve_with_loss(candidates[idx[ok]], warn=False)
                losses[start:start + chunk][ok] = loss
        if world > 1:
            gathered = trainer.strategy.all_gather(losses).reshape(world, share)  # (world, share)
            losses = gathered.T.reshape(-1)  # rank-major gather back to the global candidate order
        return losses[:len(candidates)]

    def on_train_epoch_end(self, trainer: pl.Trainer, module: Any) -> None:
        if module.n_neurons == 0:
            return
        downsampling = getattr(module, "downsampler", None)
        if downsampling is not None:
            downsampling.neuron_added(module)
        grid = module.training_params
        taken = (grid[:, None, :] - module.selected[None]).abs().amax(-1).min(1).values < 1e-12
        candidates = grid[~taken]
        if len(candidates) == 0:
            trainer.should_stop = True
            return
        losses = self.candidate_losses(trainer, module, candidates)
        best = int(losses.argmax())
        largest = float(losses[best])
        module.max_losses = torch.cat([module.max_losses, losses[best:best + 1].to(torch.float64)])
        module.next_params = candidates[best].clone()
        module.log("greedy/max_loss", largest)
        # one line per neuron: a greedy stage runs for minutes to hours, often with the progress bar off
        names = module.problem.parameter_names
        at = lambda p: ", ".join(f"{k}={v:.4g}" for k, v in zip(names, p.tolist()))  # noqa: E731
        trained = (f" trained in {module.neuron_seconds[-1]:.0f} s" if module.neuron_seconds else "") + (
            f", loss {module.neuron_losses[-1]:.2e}" if module.neuron_losses else "")
        rank_zero_info(f"GPTPINN neuron {module.n_neurons}/{module.max_neurons} at ({at(module.selected[-1])}){trained};"
                       f" largest reduced loss {largest:.3e} at ({at(module.next_params)})")
        if downsampling is not None and module.n_neurons < module.max_neurons:
            downsampling.residual_selected(module, candidates[best:best + 1])
        if module.n_neurons >= module.max_neurons or largest < self.tolerance:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.tolerance = float(state_dict.get("tolerance", self.tolerance))
