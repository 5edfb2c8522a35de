"""One optimization path for every method: a first-order optimizer (Adam), then a second-order one (L-BFGS by
default), in one process or under DDP.

:class:`OptimizationPath` is the state machine; PINN training (:class:`AdamThenLBFGS`), each window of
:class:`~lightning_pde.callbacks.time_marching.TimeMarching` and each GPT-PINN neuron
(:meth:`~lightning_pde.modules.GPTPINN.train_neuron`) run through it, so a better second-order optimizer helps all
three by configuration alone.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from lightning_pde.validation import (
    boolean,
    integer_at_least,
    nonnegative_float,
    positive_float,
    positive_int,
)

#: builds an optimizer over the given parameters (a Lightning CLI ``OptimizerCallable``)
OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


class ReducedLoss:
    """Mixin for an optimizer with torch's L-BFGS closure protocol (``step(closure)`` may call `closure` many times):
    the closure's loss becomes the mean over the data-parallel ranks when `reduce` is set, and every step counts its
    closure calls (`evaluations`) and wall time (`seconds`).

    Under DDP each rank's closure returns the loss on its own shard of the points, while the backward pass averages
    the gradients across ranks. A quasi-Newton method decides from both: the strong-Wolfe line search compares
    losses, and ``tolerance_change`` stops on a small change of the loss. With rank-local losses the ranks take
    different step lengths and call the closure a different number of times, so their gradient all-reduces stop
    pairing up (a hang) or the replicas drift apart. Averaging the loss as well makes every rank see the same
    function, the mean of the shard losses, with its exact gradient; every rank then makes the same decisions and the
    replicas stay identical.
    """

    reduce: Callable[[Tensor], Tensor] | None = None
    evaluations: int = 0
    seconds: float = 0.0

    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        reduce = self.reduce

        def counted() -> Tensor:
            self.evaluations += 1
            loss = closure()
            if reduce is None:
                return loss
            # a copy: the reduction works in place, and the caller (Lightning) keeps the rank's own loss
            return reduce(torch.as_tensor(loss).detach().clone())

        start = time.perf_counter()
        try:
            return super().step(counted)  # type: ignore[misc]
        finally:
            self.seconds += time.perf_counter() - start


class DistributedLBFGS(ReducedLoss, torch.optim.LBFGS):
    """torch's L-BFGS whose closure loss is the mean over the data-parallel ranks (see :class:`ReducedLoss`).

    Args:
        params: parameters to optimize.
        reduce: maps a scalar tensor to its mean over the ranks (``trainer.strategy.reduce``); None in one process.
        **kwargs: as ``torch.optim.LBFGS``.
    """

    def __init__(self, params: Iterable[Tensor], reduce: Callable[[Tensor], Tensor] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.reduce = reduce


_REDUCED: dict[type, type] = {torch.optim.LBFGS: DistributedLBFGS}


def with_reduced_loss(optimizer: torch.optim.Optimizer,
                      reduce: Callable[[Tensor], Tensor] | None) -> torch.optim.Optimizer:
    """`optimizer`, now also a :class:`ReducedLoss` (its class becomes ``Distributed<Name>``, a subclass of its own
    class, as Lightning's ``LightningOptimizer`` wraps optimizers): any factory's optimizer gets the DDP loss
    averaging and the counters without knowing about them."""
    cls = type(optimizer)
    if not isinstance(optimizer, ReducedLoss):
        if cls not in _REDUCED:
            _REDUCED[cls] = type(f"Distributed{cls.__name__}", (ReducedLoss, cls),
                                 {"__module__": cls.__module__, "__doc__": cls.__doc__})
        optimizer.__class__ = _REDUCED[cls]
    optimizer.reduce = reduce  # type: ignore[attr-defined]
    return optimizer


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


@dataclasses.dataclass
class SecondOrder:
    """The second-order phase of an :class:`OptimizationPath`.

    Args:
        iterations: iteration budget (honoured exactly; 0: no second-order phase).
        iterations_per_step: iterations per step (one Lightning training step: logs, checkpoints and the progress
            bar see each).
        float64: convert the parameters (and the points) to float64 for this phase; quasi-Newton methods often gain
            an order of magnitude in accuracy from it.
        optimizer: the second-order optimizer's factory, ``optimizer(parameters)``, e.g. ``{class_path:
            torch.optim.LBFGS, init_args: {...}}`` in a config; None: torch's L-BFGS with a strong-Wolfe line search
            and the settings below. Any ``torch.optim.Optimizer`` with L-BFGS's protocol plugs in: ``step(closure)``
            runs up to ``param_groups[0]["max_iter"]`` iterations (set before every step) and keeps its cumulative
            iteration count in ``state[first parameter]["n_iter"]``; one without ``n_iter`` counts one iteration
            per step.
        lr: step length of the default L-BFGS before its line search.
        history_size: memory of the default L-BFGS.
        tolerance_grad: the default L-BFGS stops when the largest gradient entry falls below this.
        tolerance_change: the default L-BFGS stops when the loss or the step changes less than this.
    """

    iterations: int = 0
    iterations_per_step: int = 50
    float64: bool = False
    optimizer: OptimizerFactory | None = None
    lr: float = 1.0
    history_size: int = 50
    tolerance_grad: float = 1e-9
    tolerance_change: float = 1e-12

    def checked(self, owner: str, prefix: str = "") -> SecondOrder:
        """This recipe with every setting validated; errors name `owner` and the key as ``{prefix}{field}``."""
        if self.optimizer is not None and not callable(self.optimizer):
            raise ValueError(f"{owner}: {prefix}optimizer must be an optimizer factory (optimizer(parameters) -> "
                             f"torch.optim.Optimizer, e.g. {{class_path: torch.optim.LBFGS}}), got {self.optimizer!r}")
        return dataclasses.replace(
            self, iterations=integer_at_least(owner, f"{prefix}iterations", self.iterations, 0),
            iterations_per_step=positive_int(owner, f"{prefix}iterations_per_step", self.iterations_per_step),
            float64=boolean(owner, f"{prefix}float64", self.float64),
            lr=positive_float(owner, f"{prefix}lr", self.lr),
            history_size=positive_int(owner, f"{prefix}history_size", self.history_size),
            tolerance_grad=nonnegative_float(owner, f"{prefix}tolerance_grad", self.tolerance_grad),
            tolerance_change=nonnegative_float(owner, f"{prefix}tolerance_change", self.tolerance_change))

    def factory(self, max_iter: int | None = None) -> OptimizerFactory:
        """The optimizer factory: `optimizer`, or the default strong-Wolfe L-BFGS whose first step runs up to
        `max_iter` iterations (default `iterations_per_step`; its evaluation limit follows from it)."""
        if self.optimizer is not None:
            return self.optimizer
        return functools.partial(DistributedLBFGS, lr=self.lr, max_iter=max_iter or self.iterations_per_step,
                                 history_size=self.history_size, tolerance_grad=self.tolerance_grad,
                                 tolerance_change=self.tolerance_change, line_search_fn="strong_wolfe")


class OptimizationPath:
    """`first_steps` steps of a first-order optimizer (Adam), then the `second_order` phase: steps of up to
    ``iterations_per_step`` iterations of the second-order optimizer until its budget is spent (in iterations, or in
    ``ceil(budget / iterations_per_step)`` steps, whichever comes first), or until a step ends
    before its own budget (the optimizer converged: it met its tolerances; a step that ran out of loss evaluations,
    L-BFGS's ``max_eval``, has not converged and the phase goes on). One resumable state machine shared by
    PINN training, time-marching windows and GPT-PINN neurons.

    A Lightning callback drives it step by step (:meth:`first_step_done`, :meth:`start_second_order`,
    :meth:`second_step_done`) and saves :meth:`state_dict` in the checkpoint; :meth:`run` is the same path as a
    plain loop (no Trainer), for a GPT-PINN neuron.

    Progress (the second-order phase's `iterations`, closure `evaluations` and `seconds`) is in :meth:`metrics`.

    Args:
        first_steps: steps of the first-order optimizer (>= 0).
        second_order: the second-order phase.
    """

    def __init__(self, first_steps: int, second_order: SecondOrder) -> None:
        self.first_steps = first_steps
        self.second_order = second_order
        #: the second-order iteration budget of this run (a Trainer's max_steps may shrink it, see fit_schedule)
        self.budget = second_order.iterations
        self.reset()

    def reset(self) -> None:
        """Back to the start of the first phase (the first phase is skipped when `first_steps` is 0)."""
        self.phase = "first" if self.first_steps else ("second" if self.budget else "done")
        self.steps = 0
        self.iterations, self.evaluations, self.seconds = 0, 0, 0.0
        self._n_iter_seen = 0  # the optimizer's cumulative iteration count after our last step

    @property
    def second_order_steps(self) -> int:
        """Steps the full second-order budget takes."""
        return math.ceil(self.second_order.iterations / self.second_order.iterations_per_step)

    @property
    def remaining(self) -> int:
        return self.budget - self.iterations

    # -- the first phase ------------------------------------------------------------------------------------------
    def first_step_done(self) -> bool:
        """Count one first-order step; True when the first phase is over (the caller then starts the second)."""
        self.steps += 1
        return self.steps >= self.first_steps

    # -- the second phase -----------------------------------------------------------------------------------------
    def start_second_order(self, parameters: Iterable[Tensor],
                           reduce: Callable[[Tensor], Tensor] | None = None) -> torch.optim.Optimizer:
        """The second-order optimizer over `parameters`, its loss averaged by `reduce` (DDP; None in one process),
        with the first step's iteration budget; the path is in its second phase from now on. Convert the
        parameters to float64 first where ``second_order.float64`` asks for it."""
        self.phase, self.steps = "second", 0
        first_step = max(min(self.second_order.iterations_per_step, self.remaining), 1)
        optimizer = with_reduced_loss(self.second_order.factory(first_step)(parameters), reduce)
        self._set_step_budget(optimizer)
        self._n_iter_seen = self._n_iter(optimizer)
        return optimizer

    def second_step_done(self, optimizer: torch.optim.Optimizer,
                         decide: Callable[[bool], bool] = bool) -> bool:
        """Account for one step of the second-order optimizer; True when the phase is over (budget spent, or the step
        ended before its own budget). `decide` turns this rank's verdict into the one all ranks act on (under DDP
        ``lambda done: trainer.strategy.reduce_boolean_decision(done, all=False)``, so no rank leaves while the
        others wait for it in the next step's all-reduce). Otherwise the next step's budget is set."""
        self.steps += 1
        n_iter = self._n_iter(optimizer)
        counted = n_iter is not None
        done = (n_iter - self._n_iter_seen) if counted else 1
        self._n_iter_seen = n_iter if counted else 0
        step_budget = self._step_budget(optimizer)
        evaluations = getattr(optimizer, "evaluations", 0)
        self.iterations += done
        self.evaluations += evaluations
        self.seconds += getattr(optimizer, "seconds", 0.0)
        optimizer.evaluations, optimizer.seconds = 0, 0.0  # type: ignore[attr-defined]
        # Fewer iterations than asked for means the optimizer met a tolerance, unless the step ran out of loss
        # evaluations (L-BFGS's max_eval, 1.25 max_iter: a strong-Wolfe search that needed a few extra evaluations)
        max_eval = optimizer.param_groups[0].get("max_eval")
        out_of_evaluations = max_eval is not None and evaluations >= max_eval
        converged = step_budget is not None and done < step_budget and not out_of_evaluations
        # ... and the phase never takes more steps than its budget in full steps, so a run's length stays as planned
        out_of_steps = self.steps >= math.ceil(self.budget / self.second_order.iterations_per_step)
        if decide(self.remaining <= 0 or converged or out_of_steps):
            self.phase = "done"
            return True
        self._set_step_budget(optimizer)
        return False

    def _step_budget(self, optimizer: torch.optim.Optimizer) -> int | None:
        return optimizer.param_groups[0].get("max_iter")

    def _set_step_budget(self, optimizer: torch.optim.Optimizer) -> None:
        if "max_iter" in optimizer.param_groups[0]:
            for group in optimizer.param_groups:
                group["max_iter"] = max(min(self.second_order.iterations_per_step, self.remaining), 1)

    @staticmethod
    def _n_iter(optimizer: torch.optim.Optimizer) -> int | None:
        first = optimizer.param_groups[0]["params"][0]
        n_iter = optimizer.state.get(first, {}).get("n_iter")
        if n_iter is None and "max_iter" in optimizer.param_groups[0]:
            return 0  # an L-BFGS-like optimizer before its first step
        return None if n_iter is None else int(n_iter)

    # -- the whole path without a Trainer -------------------------------------------------------------------------
    def run(self, parameters: list[torch.nn.Parameter], loss: Callable[[], Tensor],
            first_optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
            scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
            to_float64: Callable[[], None] | None = None) -> float:
        """Train `parameters` on `loss()` along the whole path and return the final loss: `first_steps` steps of
        ``first_optimizer(parameters)`` (with ``scheduler(optimizer)`` stepped after each), then the second-order
        phase with the same stopping rule as in a Lightning run. `to_float64` converts the parameters (in place)
        and whatever `loss` reads to float64 when ``second_order.float64`` asks for it."""
        self.reset()
        if self.phase == "first":
            optimizer = first_optimizer(parameters)
            schedule = scheduler(optimizer) if scheduler is not None else None
            done = False
            while not done:
                optimizer.zero_grad(set_to_none=True)
                loss().backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                done = self.first_step_done()
            self.phase = "second" if self.budget else "done"
        if self.phase == "second":
            if self.second_order.float64 and to_float64 is not None:
                to_float64()
            optimizer = self.start_second_order(parameters)

            def closure() -> Tensor:
                optimizer.zero_grad(set_to_none=True)
                value = loss()
                value.backward()
                return value

            done = False
            while not done:
                optimizer.step(closure)
                done = self.second_step_done(optimizer)
        return float(loss().detach())  # with gradients: a residual may differentiate the network

    # -- progress -------------------------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """The second-order phase so far: ``iterations``, ``evaluations`` (closure calls) and ``seconds``."""
        return {"iterations": float(self.iterations), "evaluations": float(self.evaluations),
                "seconds": float(self.seconds)}

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "steps": self.steps, "iterations": self.iterations,
                "evaluations": self.evaluations, "seconds": self.seconds, "n_iter_seen": self._n_iter_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase = str(state.get("phase", self.phase))
        self.steps = int(state.get("steps", 0))
        self.iterations = int(state.get("iterations", 0))
        self.evaluations = int(state.get("evaluations", 0))
        self.seconds = float(state.get("seconds", 0.0))
        self._n_iter_seen = int(state.get("n_iter_seen", 0))


class AdamThenLBFGS(Callback):
    """Train with the module's own optimizer (Adam) for `switch_step` steps, then with a second-order optimizer
    (L-BFGS with a strong-Wolfe line search, or the one `optimizer` names) for `lbfgs_iterations` iterations: the
    :class:`OptimizationPath` of a PINN.

    Each Lightning training step after the switch is one optimizer step of up to `iterations_per_step` iterations,
    so logging, checkpoints and progress bars keep working. Training stops once the budget is spent, or early once
    the optimizer converges (a step that ends before its iteration budget). Logged after the switch:
    ``lbfgs/iterations`` (cumulative iterations), ``lbfgs/evaluations`` (loss and gradient evaluations) and
    ``lbfgs/seconds`` (time inside the second-order optimizer).

    The run's length: the schedule is ``switch_step + ceil(lbfgs_iterations / iterations_per_step)`` Lightning
    steps. With no ``max_steps`` given to the Trainer (its default -1) the callback sets ``max_steps`` to that. A
    ``max_steps`` given to the Trainer, in a config or as ``--trainer.max_steps``, is the limit and wins: a longer one
    still ends with the schedule, and a shorter one shrinks both phases in proportion so that the switch and some
    L-BFGS steps still happen inside it (``configs/pinn/burgers.yaml`` with ``--trainer.max_steps=200``: 185 Adam
    steps, then 15 L-BFGS steps of 50 iterations); the shrunk schedule is reported when fit starts.

    Under DDP every rank sees the loss averaged over the ranks (:class:`ReducedLoss`), as DDP averages the gradients,
    so all ranks take the same L-BFGS steps and stop at the same step; the replicas stay identical.

    Resuming from a checkpoint continues exactly where the run stopped, after the switch too: the second-order
    optimizer's state (its curvature history) is in the checkpoint, and so is the count of its iterations.

    Args:
        switch_step: optimizer steps with the module's optimizer before the switch.
        lbfgs_iterations: second-order iteration budget (honoured exactly).
        iterations_per_step: second-order iterations per Lightning step.
        lr: L-BFGS step length before the line search.
        history_size: L-BFGS memory.
        tolerance_grad: stop when the largest gradient entry falls below this.
        tolerance_change: stop when the loss or step changes less than this.
        float64: convert the module (and the collocation points) to float64 at the switch; L-BFGS often gains an
            order of magnitude in accuracy from it. Not under DDP (the gradient buckets keep their dtype); there,
            train in float64 throughout with ``--trainer.precision=64-true``.
        optimizer: the second-order optimizer's factory instead of L-BFGS (then `lr`, `history_size` and the
            tolerances are unused), e.g. ``{class_path: torch.optim.LBFGS, init_args: {history_size: 100,
            line_search_fn: strong_wolfe}}``; see :class:`SecondOrder` for the protocol it must follow.
    """

    def __init__(self, switch_step: int = 5000, lbfgs_iterations: int = 5000, iterations_per_step: int = 50,
                 lr: float = 1.0, history_size: int = 50, tolerance_grad: float = 1e-9,
                 tolerance_change: float = 1e-12, float64: bool = False,
                 optimizer: OptimizerFactory | None = None) -> None:
        owner = "AdamThenLBFGS"
        self.switch_step = integer_at_least(owner, "switch_step", switch_step, 0)
        self.lbfgs_iterations = positive_int(owner, "lbfgs_iterations", lbfgs_iterations)
        second_order = SecondOrder(lbfgs_iterations, iterations_per_step, float64, optimizer, lr, history_size,
                                   tolerance_grad, tolerance_change).checked(owner)
        self.iterations_per_step, self.float64 = second_order.iterations_per_step, second_order.float64
        self.lr, self.history_size = second_order.lr, second_order.history_size
        self.tolerance_grad, self.tolerance_change = second_order.tolerance_grad, second_order.tolerance_change
        self.optimizer = optimizer
        self.path = OptimizationPath(self.switch_step, second_order)
        # the schedule of this fit, after the Trainer's max_steps (see the class docstring)
        self._switch_at = self.switch_step

    @property
    def switched(self) -> bool:
        return self.path.phase != "first"

    @property
    def iterations(self) -> int:
        """Second-order iterations so far."""
        return self.path.iterations

    @property
    def lbfgs_steps(self) -> int:
        return self.path.second_order_steps

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.float64 and trainer.world_size > 1:
            raise ValueError(f"AdamThenLBFGS: float64=True cannot switch dtypes under DDP (world size "
                             f"{trainer.world_size}): DDP's gradient buckets keep the dtype they were built with. "
                             "Set float64: false and train in float64 throughout with --trainer.precision=64-true")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        limit = trainer.max_steps
        self._switch_at, steps = fit_schedule(self.switch_step, self.lbfgs_steps, limit)
        self.path.budget = min(self.lbfgs_iterations, steps * self.iterations_per_step)
        if limit < 0:
            trainer.fit_loop.epoch_loop.max_steps = self.switch_step + self.lbfgs_steps
        elif self._switch_at != self.switch_step:
            rank_zero_info(f"AdamThenLBFGS: max_steps={limit} is shorter than the schedule ({self.switch_step} steps, "
                           f"then {self.lbfgs_steps} L-BFGS steps of up to {self.iterations_per_step} iterations); "
                           f"shrunk to fit: {self._switch_at} steps, then {steps} L-BFGS steps ({self.path.budget} "
                           "iterations)")
        if self.switched:
            # resumed after the switch: Lightning restores the optimizer's state into this one after on_fit_start
            self._install(trainer, pl_module, resumed=True)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if not self.switched and trainer.global_step >= self._switch_at:
            self._install(trainer, pl_module)

    def _install(self, trainer: pl.Trainer, pl_module: pl.LightningModule, resumed: bool = False) -> None:
        if self.float64 and pl_module.dtype != torch.float64:
            pl_module.double()
            to_dtype = getattr(trainer.datamodule, "to_dtype", None)
            if to_dtype is not None:
                to_dtype(torch.float64)
        state = self.path.state_dict()
        optimizer = self.path.start_second_order(pl_module.parameters(),
                                                 reduce=trainer.strategy.reduce if trainer.world_size > 1 else None)
        if resumed:  # the count and the iteration baseline of the restored optimizer, as saved
            self.path.load_state_dict(state)
        trainer.strategy.optimizers = [optimizer]
        trainer.strategy.lr_scheduler_configs = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.path.phase != "second":
            return
        # The ranks' optimizer states agree (ReducedLoss), so they agree on stopping; deciding it together too keeps
        # a rank from leaving while the others wait for it in the next step's all-reduce.
        done = self.path.second_step_done(
            trainer.optimizers[0], lambda stop: trainer.strategy.reduce_boolean_decision(stop, all=False))
        for key, value in self.path.metrics().items():
            pl_module.log(f"lbfgs/{key}", value, prog_bar=key == "iterations")
        if done:
            trainer.should_stop = True

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("callbacks", {}).get(self.state_key, {})
        if self.float64 and state.get("switched") and pl_module.dtype != torch.float64:
            # the weights were saved in float64: load them as such, not rounded through the module's float32
            pl_module.double()
            trainer.strategy.load_model_state_dict(checkpoint, strict=pl_module.strict_loading)

    def state_dict(self) -> dict[str, Any]:
        return {"switched": self.switched, "iterations": self.iterations, "path": self.path.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "path" in state_dict:
            self.path.load_state_dict(state_dict["path"])
        else:  # a checkpoint from before the optimization path: its iteration count only
            self.path.reset()
            if state_dict.get("switched"):
                self.path.phase, self.path.iterations = "second", int(state_dict.get("iterations", 0))
