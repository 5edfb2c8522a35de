"""Time marching: train a time-dependent PINN one time window after another."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from lightning_pde.callbacks.lbfgs import (
    OptimizationPath,
    OptimizerFactory,
    SecondOrder,
    fit_schedule,
)
from lightning_pde.problems.base import Condition
from lightning_pde.validation import (
    boolean,
    integer_at_least,
    name_list,
    nonempty_str,
    positive_int,
)


class TimeMarching(Callback):
    """Split the time interval [t_0, t_1] into `n_windows` equal windows and train them in order, each with
    `adam_steps` steps of the module's optimizer and then up to `lbfgs_iterations` L-BFGS (or `optimizer`)
    iterations.

    Two modes, chosen by the network:

    * **Window by window** (a :class:`~lightning_pde.nn.time_windows.TimeWindows` network, one sub-network per
      window): window k is trained alone on its own slab [t_k, t_{k+1}]; its initial condition is continuity with
      the trained, frozen window k - 1 at t_k (the fields named in `match` agree there), the problem's own initial
      condition for k = 0. This is sequence-to-sequence training (Krishnapriyan et al. 2021, arXiv 2109.01050, Sec. 4.2;
      Mattey & Ghosh 2022, arXiv 2107.07597 pass the state on the same way). With `warm_start` window k starts
      from window k - 1's weights.
    * **Growing window** (any other network): one network is trained on [t_0, t_{k+1}] in stage k, with the
      problem's conditions unchanged (the time-adaptive PINN of Wight & Zhao 2020, arXiv 2007.04542, Sec. 3.1).

    Every condition's sampler is squeezed affinely in time onto the current window, so the collocation data module
    (which samples the module's conditions) draws the window's points; they are redrawn at each window change.
    The callback owns the optimizer: each window starts a fresh one from the module's ``optimizer_factory``
    (Adam when the module has none) over the trainable parameters, and its learning-rate scheduler is not used.
    It stops training after the last window. With no ``max_steps`` given to the Trainer (its default -1) it sets
    ``max_steps`` to the sum of the windows' budgets; a ``max_steps`` given to the Trainer (in a config or as
    ``--trainer.max_steps``) is the limit and wins: when it is shorter than that sum, every window's Adam steps and
    L-BFGS budget shrink in proportion to fit its equal share, so that every window is still trained (an error
    when the limit is below one step per window); the shrunk budgets are reported when fit starts.
    Under DDP the L-BFGS loss is averaged over the ranks (:class:`~lightning_pde.callbacks.lbfgs.DistributedLBFGS`)
    and the end of each window is decided together, so the replicas stay identical; with a ``TimeWindows`` network
    DDP is told to expect unused parameters (the windows not in training).
    Resuming from a checkpoint restarts the current window's current phase with a fresh optimizer. Marching runs
    forward from the lower end of the time input's range (problems with a terminal condition are not supported).

    Each window runs the :class:`~lightning_pde.callbacks.lbfgs.OptimizationPath` that PINN training and GPT-PINN
    neurons run: `adam_steps` steps, then the second-order phase with its stopping rule.

    Logged: ``marching/window`` (the window being trained) and, in the second-order phase, the window's
    ``marching/lbfgs_iterations``, ``marching/lbfgs_evaluations`` (loss and gradient evaluations) and
    ``marching/lbfgs_seconds``.

    Args:
        n_windows: number of time windows; None takes the network's (a ``TimeWindows`` network must agree).
        adam_steps: steps of the module's optimizer per window (0: L-BFGS only).
        lbfgs_iterations: L-BFGS iteration budget per window (0: none). A window ends early when L-BFGS
            converges (a step that stops before its iteration budget).
        iterations_per_step: L-BFGS iterations per Lightning step.
        history_size: L-BFGS memory.
        tolerance_grad: L-BFGS stops when the largest gradient entry falls below this.
        tolerance_change: L-BFGS stops when the loss or the step changes less than this.
        time_input: name of the time input.
        match: fields that must agree across a window boundary, e.g. ``["u"]``, or ``["u", "u_t"]`` for an
            equation second order in time.
        warm_start: start each window's network from the previous window's weights.
        optimizer: the second-order optimizer's factory instead of L-BFGS (then `history_size` and the tolerances
            are unused); see :class:`~lightning_pde.callbacks.lbfgs.SecondOrder` for the protocol it must follow.
    """

    def __init__(self, n_windows: int | None = None, adam_steps: int = 1000, lbfgs_iterations: int = 1000,
                 iterations_per_step: int = 100, history_size: int = 50, tolerance_grad: float = 1e-11,
                 tolerance_change: float = 1e-14, time_input: str = "t", match: Sequence[str] = ("u",),
                 warm_start: bool = True, optimizer: OptimizerFactory | None = None) -> None:
        self.n_windows = None if n_windows is None else positive_int("TimeMarching", "n_windows", n_windows)
        self.adam_steps = integer_at_least("TimeMarching", "adam_steps", adam_steps, 0)
        # the public name first: SecondOrder's own check would call it "iterations"
        lbfgs_iterations = integer_at_least("TimeMarching", "lbfgs_iterations", lbfgs_iterations, 0)
        second_order = SecondOrder(lbfgs_iterations, iterations_per_step, False, optimizer, 1.0, history_size,
                                   tolerance_grad, tolerance_change).checked("TimeMarching")
        self.lbfgs_iterations = second_order.iterations
        if self.adam_steps == 0 and self.lbfgs_iterations == 0:
            raise ValueError("TimeMarching: adam_steps and lbfgs_iterations are both 0, so no window would train")
        self.iterations_per_step, self.history_size = second_order.iterations_per_step, second_order.history_size
        self.tolerance_grad, self.tolerance_change = second_order.tolerance_grad, second_order.tolerance_change
        self.optimizer = optimizer
        self.time_input = nonempty_str("TimeMarching", "time_input", time_input)
        self.match = name_list("TimeMarching", "match", match)
        self.warm_start = boolean("TimeMarching", "warm_start", warm_start)
        #: the current window's optimization path (Adam, then the second-order phase)
        self.path = OptimizationPath(self.adam_steps, second_order)
        # progress, saved in checkpoints
        self.window, self.finished = 0, False
        self._resume_phase = ""
        self._original: dict[str, Condition] = {}

    # -- set-up ---------------------------------------------------------------------------------------------------
    @property
    def lbfgs_steps(self) -> int:
        return self.path.second_order_steps

    @property
    def phase(self) -> str:
        """``adam`` or ``lbfgs``: the phase of the window in training."""
        return "adam" if self.path.phase == "first" else "lbfgs"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        problem, net = getattr(pl_module, "problem", None), getattr(pl_module, "net", None)
        if problem is None or not isinstance(getattr(pl_module, "conditions", None), dict):
            raise ValueError("TimeMarching: the module must be a PINN (with `problem` and `conditions`)")
        if self.time_input not in problem.input_names:
            raise ValueError(f"TimeMarching: {problem.name} has no input {self.time_input!r}; inputs are "
                             f"{problem.input_names}")
        self.windowed = is_windowed(net)
        if self.windowed:
            if self.n_windows is not None and self.n_windows != net.n_windows:
                raise ValueError(f"TimeMarching: n_windows={self.n_windows} but the TimeWindows network has "
                                 f"{net.n_windows}; leave n_windows out to take the network's")
            self.n_windows = net.n_windows
        elif self.n_windows is None:
            raise ValueError("TimeMarching: give n_windows (the network is not a TimeWindows network)")
        self._index = problem.input_names.index(self.time_input)
        self.edges = window_edges(pl_module, self.n_windows, self.time_input)
        if not self._original:
            self._original = dict(pl_module.conditions)
        self._initial = [name for name, cond in self._original.items() if cond.kind == "initial"]
        strategy = trainer.strategy
        if self.windowed and isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get(
                "find_unused_parameters"):
            # only the window in training takes part in a step; DDP would wait for the others' gradients forever
            # (setup runs before DDP wraps the module, so this still takes effect)
            strategy._ddp_kwargs["find_unused_parameters"] = True

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        limit, schedule = trainer.max_steps, self.n_windows * (self.adam_steps + self.lbfgs_steps)
        adam_steps, lbfgs_iterations = self.adam_steps, self.lbfgs_iterations
        if limit < 0:
            trainer.fit_loop.epoch_loop.max_steps = schedule
        elif limit < schedule:
            if limit < self.n_windows:
                raise ValueError(f"TimeMarching: max_steps={limit} leaves less than one step for each of the "
                                 f"{self.n_windows} windows; give max_steps >= {self.n_windows}")
            adam_steps, steps = fit_schedule(self.adam_steps, self.lbfgs_steps, limit // self.n_windows)
            lbfgs_iterations = min(self.lbfgs_iterations, steps * self.iterations_per_step)
            rank_zero_info(f"TimeMarching: max_steps={limit} is shorter than the {self.n_windows} windows' schedule "
                           f"({schedule} steps); each window shrunk to {adam_steps} Adam steps and "
                           f"{lbfgs_iterations} L-BFGS iterations")
        self.path.first_steps, self.path.budget = adam_steps, lbfgs_iterations
        if not self.finished:
            self._enter(trainer, pl_module, self.window, warm=False, phase=self._resume_phase)
            self._resume_phase = ""

    # -- one window -----------------------------------------------------------------------------------------------
    def _squeeze(self, sample: Callable[..., Tensor], lower: float, upper: float) -> Callable[..., Tensor]:
        """`sample` with its time column mapped affinely from [t_0, t_1] onto [lower, upper]."""

        def windowed(n: int, generator: torch.Generator | None, method: str) -> Tensor:
            return squeeze_time(sample(n, generator, method), self._index, self.edges, lower, upper)

        return windowed

    def _enter(self, trainer: pl.Trainer, pl_module: pl.LightningModule, window: int, warm: bool,
               phase: str = "") -> None:
        """Make `window` the trained one: conditions, fresh points, network and a fresh optimization path (from the
        start of `phase`, ``adam`` or ``lbfgs``, when resuming; otherwise from its beginning)."""
        self.window = window
        self.path.reset()
        if phase == "lbfgs" and self.path.budget:
            self.path.phase = "second"
        lower = self.edges[window] if self.windowed else self.edges[0]
        upper = self.edges[window + 1]
        for name, cond in self._original.items():
            new = dataclasses.replace(cond, sample=self._squeeze(cond.sample, lower, upper))
            if self.windowed and window > 0 and name in self._initial:
                new = dataclasses.replace(new, residual=continuity_residual(pl_module, window - 1, self.match))
            pl_module.conditions[name] = new
        if self.windowed:
            net = pl_module.net
            if warm and self.warm_start and window > 0:
                net.windows[window].load_state_dict(net.windows[window - 1].state_dict())
            net.active_window = window
        datamodule = trainer.datamodule
        if datamodule is not None and callable(getattr(datamodule, "sample", None)):
            datamodule.conditions = pl_module.conditions
            datamodule.collocation_points = datamodule.sample(trainer.current_epoch)
        self._install(trainer, pl_module)

    def _parameters(self, pl_module: pl.LightningModule) -> list[torch.nn.Parameter]:
        if self.windowed:
            return list(pl_module.net.windows[self.window].parameters())
        return list(pl_module.parameters())

    def _install(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        parameters = self._parameters(pl_module)
        if self.path.phase == "first":
            factory = getattr(pl_module, "optimizer_factory", None) or torch.optim.Adam
            optimizer = factory(parameters)
        else:
            optimizer = self.path.start_second_order(
                parameters, reduce=trainer.strategy.reduce if trainer.world_size > 1 else None)
        trainer.strategy.optimizers = [optimizer]
        trainer.strategy.lr_scheduler_configs = []

    # -- progress -------------------------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.finished:
            return
        pl_module.log("marching/window", float(self.window))
        path = self.path
        if path.phase == "first":
            if not path.first_step_done():
                return
            if path.budget:
                path.phase = "second"
                self._install(trainer, pl_module)
                return
        else:
            # decided together, so that no rank moves on to the next window while another still steps this one
            done = path.second_step_done(
                trainer.optimizers[0], lambda stop: trainer.strategy.reduce_boolean_decision(stop, all=False))
            for key, value in path.metrics().items():
                pl_module.log(f"marching/lbfgs_{key}", value)
            if not done:
                return
        self._next_window(trainer, pl_module)

    def _next_window(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.window + 1 >= self.n_windows:
            self.finished = True
            trainer.should_stop = True
            self._release(pl_module)
            return
        self._enter(trainer, pl_module, self.window + 1, warm=True)

    def _release(self, pl_module: pl.LightningModule) -> None:
        """Route by time again and give the module its problem's own conditions back."""
        if self.windowed:
            pl_module.net.active_window = None
        pl_module.conditions.update(self._original)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # validation scores the whole piecewise model, not the window in training
        if self.windowed:
            self._active_before_validation = pl_module.net.active_window
            pl_module.net.active_window = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.windowed and not self.finished:
            pl_module.net.active_window = getattr(self, "_active_before_validation", None)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._release(pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "phase": self.phase, "finished": self.finished}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.window, self._resume_phase = int(state_dict["window"]), str(state_dict["phase"])
        self.finished = bool(state_dict["finished"])


def is_windowed(net: Any) -> bool:
    """Whether `net` is piecewise in time (a :class:`~lightning_pde.nn.time_windows.TimeWindows` network or one
    like it): trained window by window rather than on a growing window."""
    return hasattr(net, "active_window") and hasattr(net, "n_windows")


def window_edges(module: Any, n_windows: int, time_input: str = "t") -> list[float]:
    """The edges of `n_windows` equal time windows over the time range of `module`'s problem (a PINN), in the
    problem's coordinates. A :class:`~lightning_pde.nn.time_windows.TimeWindows` network of the module gets the same
    edges in its own coordinates (after the module's input normalisation)."""
    problem, net = module.problem, module.net
    index = problem.input_names.index(time_input)
    t0, t1 = float(problem.domain.lower[index]), float(problem.domain.upper[index])
    edges = [t0 + (t1 - t0) * k / n_windows for k in range(n_windows + 1)]
    if hasattr(net, "set_edges"):
        center, scale = float(module.input_center[index]), float(module.input_scale[index])
        net.set_edges((torch.tensor(edges, dtype=torch.float64) - center) * scale)
    return edges


def squeeze_time(points: Tensor, index: int, edges: Sequence[float], lower: float, upper: float) -> Tensor:
    """`points` with column `index` (time) mapped affinely from [edges[0], edges[-1]] onto [lower, upper], in
    place; returns `points`."""
    t0, t1 = edges[0], edges[-1]
    points[:, index] = lower + (points[:, index] - t0) * ((upper - lower) / (t1 - t0))
    return points


def continuity_residual(module: Any, previous: int, match: Sequence[str]) -> Callable[[Any], Tensor]:
    """Residual of agreement with the frozen window `previous` of `module`'s TimeWindows network on the fields in
    `match`, shape (N, len(match)): the initial condition of the window after it."""
    net = module.net

    def residual(f: Any) -> Tensor:
        active, net.active_window = net.active_window, previous
        try:
            with torch.enable_grad():
                before = module.fields(f.x.detach())
                target = [before[name].detach() for name in match]
        finally:
            net.active_window = active
        return torch.stack([f[name] - value for name, value in zip(match, target)], dim=1)

    return residual
