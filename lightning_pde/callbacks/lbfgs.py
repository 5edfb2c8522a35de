"""Switch from a first-order optimizer to L-BFGS partway through training."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from lightning_pde.validation import boolean, nonnegative_float, positive_float


class AdamThenLBFGS(Callback):
    """Train with the module's own optimizer (Adam) for `switch_step` steps, then with L-BFGS (strong-Wolfe line
    search) for `lbfgs_iterations` iterations.

    Each Lightning training step after the switch is one ``LBFGS.step`` of up to `iterations_per_step` iterations,
    so logging, checkpoints and progress bars keep working. The callback extends ``trainer.max_steps`` to
    ``switch_step + ceil(lbfgs_iterations / iterations_per_step)``, and stops early once L-BFGS converges
    (a step that ends before its iteration budget). The total iteration count is logged as ``lbfgs/iterations``.

    Args:
        switch_step: optimizer steps with the module's optimizer before the switch.
        lbfgs_iterations: L-BFGS iteration budget (honoured exactly).
        iterations_per_step: L-BFGS iterations per Lightning step.
        lr: L-BFGS step length before the line search.
        history_size: L-BFGS memory.
        tolerance_grad: stop when the largest gradient entry falls below this.
        tolerance_change: stop when the loss or step changes less than this.
        float64: convert the module (and the collocation points) to float64 at the switch; L-BFGS often gains an
            order of magnitude in accuracy from it.
    """

    def __init__(self, switch_step: int = 5000, lbfgs_iterations: int = 5000, iterations_per_step: int = 50,
                 lr: float = 1.0, history_size: int = 50, tolerance_grad: float = 1e-9,
                 tolerance_change: float = 1e-12, float64: bool = False) -> None:
        for name, value, minimum in (("switch_step", switch_step, 0), ("lbfgs_iterations", lbfgs_iterations, 1),
                                     ("iterations_per_step", iterations_per_step, 1),
                                     ("history_size", history_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"AdamThenLBFGS: {name} must be an integer >= {minimum}, got {value!r}")
        lr = positive_float("AdamThenLBFGS", "lr", lr)
        tolerance_grad = nonnegative_float("AdamThenLBFGS", "tolerance_grad", tolerance_grad)
        tolerance_change = nonnegative_float("AdamThenLBFGS", "tolerance_change", tolerance_change)
        float64 = boolean("AdamThenLBFGS", "float64", float64)
        self.switch_step, self.lbfgs_iterations = switch_step, lbfgs_iterations
        self.iterations_per_step, self.lr, self.history_size = iterations_per_step, lr, history_size
        self.tolerance_grad, self.tolerance_change, self.float64 = tolerance_grad, tolerance_change, float64
        self.switched = False
        self.iterations = 0
        self._n_iter_seen = 0  # L-BFGS's cumulative iteration count after our last step

    @property
    def lbfgs_steps(self) -> int:
        return math.ceil(self.lbfgs_iterations / self.iterations_per_step)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.fit_loop.epoch_loop.max_steps = self.switch_step + self.lbfgs_steps
        if self.switched:  # resumed after the switch: the restored optimizer state is L-BFGS's
            self._install(trainer, pl_module)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if not self.switched and trainer.global_step >= self.switch_step:
            self.switched = True
            self._install(trainer, pl_module)

    def _install(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.float64 and pl_module.dtype != torch.float64:
            pl_module.double()
            to_dtype = getattr(trainer.datamodule, "to_dtype", None)
            if to_dtype is not None:
                to_dtype(torch.float64)
        remaining = self.lbfgs_iterations - self.iterations
        optimizer = torch.optim.LBFGS(
            pl_module.parameters(), lr=self.lr, max_iter=min(self.iterations_per_step, max(remaining, 1)),
            history_size=self.history_size, tolerance_grad=self.tolerance_grad,
            tolerance_change=self.tolerance_change, line_search_fn="strong_wolfe")
        trainer.strategy.optimizers = [optimizer]
        self._n_iter_seen = 0
        trainer.strategy.lr_scheduler_configs = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self.switched:
            return
        optimizer = trainer.optimizers[0]
        n_iter = int(optimizer.state[optimizer.param_groups[0]["params"][0]].get("n_iter", 0))
        done, self._n_iter_seen = n_iter - self._n_iter_seen, n_iter
        step_budget = optimizer.param_groups[0]["max_iter"]
        self.iterations += done
        pl_module.log("lbfgs/iterations", float(self.iterations), prog_bar=True)
        remaining = self.lbfgs_iterations - self.iterations
        if remaining <= 0 or done < step_budget:
            trainer.should_stop = True
        else:
            optimizer.param_groups[0]["max_iter"] = min(self.iterations_per_step, remaining)

    def state_dict(self) -> dict[str, Any]:
        return {"switched": self.switched, "iterations": self.iterations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.switched = bool(state_dict["switched"])
        self.iterations = int(state_dict["iterations"])
