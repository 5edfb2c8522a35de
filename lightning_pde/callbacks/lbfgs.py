"""Switch from a first-order optimizer to L-BFGS partway through training, in one process or under DDP."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from lightning_pde.validation import boolean, nonnegative_float, positive_float


class DistributedLBFGS(torch.optim.LBFGS):
    """torch's L-BFGS whose closure loss is the mean over the data-parallel ranks.

    Under DDP each rank's closure returns the loss on its own shard of the points, while the backward pass averages
    the gradients across ranks. torch's L-BFGS decides from both: the strong-Wolfe line search compares losses, and
    ``tolerance_change`` stops on a small change of the loss. With rank-local losses the ranks take different step
    lengths and call the closure a different number of times, so their gradient all-reduces stop pairing up (a
    hang) or the replicas drift apart. Averaging the loss as well makes every rank see the same function, the mean of
    the shard losses, with its exact gradient; every rank then makes the same decisions and the replicas stay
    identical.

    Args:
        params: parameters to optimize.
        reduce: maps a scalar tensor to its mean over the ranks (``trainer.strategy.reduce``); None in one process.
        **kwargs: as ``torch.optim.LBFGS``.
    """

    def __init__(self, params: Iterable[Tensor], reduce: Callable[[Tensor], Tensor] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.reduce = reduce

    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        if self.reduce is None:
            return super().step(closure)
        reduce = self.reduce

        def global_closure() -> Tensor:
            loss = closure()
            # a copy: the reduction works in place, and the caller (Lightning) keeps the rank's own loss
            return reduce(torch.as_tensor(loss).detach().clone())

        return super().step(global_closure)


def fit_schedule(first_steps: int, lbfgs_steps: int, max_steps: int) -> tuple[int, int]:
    """Steps of the first optimizer and of L-BFGS when a schedule of `first_steps` + `lbfgs_steps` Lightning steps
    must end by step `max_steps` (the Trainer's limit, -1 for none): unchanged when it fits, otherwise both phases
    shrink in proportion, keeping at least one step of each while `max_steps` allows it."""
    total = first_steps + lbfgs_steps
    if max_steps < 0 or max_steps >= total:
        return first_steps, lbfgs_steps
    lbfgs = round(max_steps * lbfgs_steps / total)
    if lbfgs_steps and lbfgs == 0 and (max_steps >= 2 or first_steps == 0):
        lbfgs = 1
    if first_steps and lbfgs == max_steps and max_steps >= 2:
        lbfgs = max_steps - 1
    lbfgs = min(lbfgs, max_steps)
    return max_steps - lbfgs, lbfgs


class AdamThenLBFGS(Callback):
    """Train with the module's own optimizer (Adam) for `switch_step` steps, then with L-BFGS (strong-Wolfe line
    search) for `lbfgs_iterations` iterations.

    Each Lightning training step after the switch is one ``LBFGS.step`` of up to `iterations_per_step` iterations,
    so logging, checkpoints and progress bars keep working. Training stops once the L-BFGS budget is spent, or early
    once L-BFGS converges (a step that ends before its iteration budget). The total iteration count is logged as
    ``lbfgs/iterations``.

    The run's length: the schedule is ``switch_step + ceil(lbfgs_iterations / iterations_per_step)`` Lightning
    steps. With no ``max_steps`` given to the Trainer (its default -1) the callback sets ``max_steps`` to that. A
    ``max_steps`` given to the Trainer, in a config or as ``--trainer.max_steps``, is the limit and wins: a longer one
    still ends with the schedule, and a shorter one shrinks both phases in proportion so that the switch and some
    L-BFGS steps still happen inside it (``configs/pinn/burgers.yaml`` with ``--trainer.max_steps=200``: 185 Adam
    steps, then 15 L-BFGS steps of 50 iterations); the shrunk schedule is reported when fit starts.

    Under DDP every rank sees the loss averaged over the ranks (:class:`DistributedLBFGS`), as DDP averages the
    gradients, so all ranks take the same L-BFGS steps and stop at the same step; the replicas stay identical.

    Args:
        switch_step: optimizer steps with the module's optimizer before the switch.
        lbfgs_iterations: L-BFGS iteration budget (honoured exactly).
        iterations_per_step: L-BFGS iterations per Lightning step.
        lr: L-BFGS step length before the line search.
        history_size: L-BFGS memory.
        tolerance_grad: stop when the largest gradient entry falls below this.
        tolerance_change: stop when the loss or step changes less than this.
        float64: convert the module (and the collocation points) to float64 at the switch; L-BFGS often gains an
            order of magnitude in accuracy from it. Not under DDP (the gradient buckets keep their dtype); there,
            train in float64 throughout with ``--trainer.precision=64-true``.
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
        # the schedule of this fit, after the Trainer's max_steps (see the class docstring)
        self._switch_at, self._budget = switch_step, lbfgs_iterations

    @property
    def lbfgs_steps(self) -> int:
        return math.ceil(self.lbfgs_iterations / self.iterations_per_step)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.float64 and trainer.world_size > 1:
            raise ValueError(f"AdamThenLBFGS: float64=True cannot switch dtypes under DDP (world size "
                             f"{trainer.world_size}): DDP's gradient buckets keep the dtype they were built with. "
                             "Set float64: false and train in float64 throughout with --trainer.precision=64-true")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        limit = trainer.max_steps
        self._switch_at, steps = fit_schedule(self.switch_step, self.lbfgs_steps, limit)
        self._budget = min(self.lbfgs_iterations, steps * self.iterations_per_step)
        if limit < 0:
            trainer.fit_loop.epoch_loop.max_steps = self.switch_step + self.lbfgs_steps
        elif self._switch_at != self.switch_step:
            rank_zero_info(f"AdamThenLBFGS: max_steps={limit} is shorter than the schedule ({self.switch_step} steps, "
                           f"then {self.lbfgs_steps} L-BFGS steps of up to {self.iterations_per_step} iterations); "
                           f"shrunk to fit: {self._switch_at} steps, then {steps} L-BFGS steps ({self._budget} "
                           "iterations)")
        if self.switched:  # resumed after the switch: the restored optimizer state is L-BFGS's
            self._install(trainer, pl_module)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if not self.switched and trainer.global_step >= self._switch_at:
            self.switched = True
            self._install(trainer, pl_module)

    def _install(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.float64 and pl_module.dtype != torch.float64:
            pl_module.double()
            to_dtype = getattr(trainer.datamodule, "to_dtype", None)
            if to_dtype is not None:
                to_dtype(torch.float64)
        remaining = self._budget - self.iterations
        optimizer = DistributedLBFGS(
            pl_module.parameters(), reduce=trainer.strategy.reduce if trainer.world_size > 1 else None, lr=self.lr,
            max_iter=min(self.iterations_per_step, max(remaining, 1)), history_size=self.history_size,
            tolerance_grad=self.tolerance_grad, tolerance_change=self.tolerance_change,
            line_search_fn="strong_wolfe")
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
        remaining = self._budget - self.iterations
        # The ranks' L-BFGS states agree (DistributedLBFGS), so they agree on stopping; deciding it together too
        # keeps a rank from leaving while the others wait for it in the next step's all-reduce.
        if trainer.strategy.reduce_boolean_decision(remaining <= 0 or done < step_budget, all=False):
            trainer.should_stop = True
        else:
            optimizer.param_groups[0]["max_iter"] = min(self.iterations_per_step, remaining)

    def state_dict(self) -> dict[str, Any]:
        return {"switched": self.switched, "iterations": self.iterations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.switched = bool(state_dict["switched"])
        self.iterations = int(state_dict["iterations"])
