"""lightning-pde's side of the peer benchmark: one PINN, trained as a user runs it, scored by `protocol`.

    .venv/bin/python benchmarks/peers/run_lpde.py --problem poisson --steps 5000 --probe-every 500

``--loop trainer`` (default) trains through ``pl.Trainer`` (inference_mode=False; logger, checkpointing, progress
bar, model summary and validation off); ``--loop plain`` runs the same steps as a bare loop over
``PINN.condition_losses`` + Adam, which measures what Lightning's per-step machinery costs. Both start from the
same seed, network and points, so they should reach the same errors.
"""

from __future__ import annotations

import functools
import warnings
from importlib.metadata import version

import pytorch_lightning as pl
import torch

from protocol import (LEARNING_RATE, PROBLEMS, Reference, TrainingClock, argument_parser, configure_torch, emit,
                      parse_args)

from lightning_pde.data import CollocationDataModule
from lightning_pde.derivatives import Autograd, SinglePass
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Burgers, Poisson2D


def build(problem: str, engine: str = "Autograd", compile: bool = False,
          fused_adam: bool = False) -> tuple[PINN, CollocationDataModule]:
    """The module and data module for `problem` with the settings in `protocol.PROBLEMS`, derivatives by `engine`
    (``Autograd`` or ``SinglePass``), the loss through torch.compile if `compile`, and torch's fused Adam kernel
    if `fused_adam` (the same update rule as the peers' Adam, in one kernel instead of a Python loop over the
    parameters)."""
    setup = PROBLEMS[problem]
    if problem == "poisson":
        pde = Poisson2D(n_pde=setup["n_pde"], n_boundary=setup["n_boundary"])
    else:
        pde = Burgers(nu=setup["nu"], n_pde=setup["n_pde"], n_initial=setup["n_initial"],
                      n_boundary=setup["n_boundary"])
    module = PINN(pde, net=MLP(hidden=setup["hidden"], activation="tanh"),
                  derivatives=Autograd() if engine == "Autograd" else SinglePass(), compile=compile,
                  optimizer=functools.partial(torch.optim.Adam, lr=LEARNING_RATE,
                                              **({"fused": True} if fused_adam else {})))
    # Sobol points (the data module's default); the seed fixes them.
    return module, CollocationDataModule(steps_per_epoch=500, seed=0)


class ClockCallback(pl.Callback):
    """Drives a `TrainingClock` from Lightning's batch hooks and records the rows of the first batch."""

    def __init__(self, clock: TrainingClock) -> None:
        self.clock = clock
        self.rows: dict[str, int] = {}

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch, batch_idx: int) -> None:
        if not self.rows:
            self.rows = {name: len(points) for name, points in batch.items()}
        self.clock.start()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self.clock.step_done(trainer.global_step, module)


def train_with_trainer(module: PINN, datamodule: CollocationDataModule, clock: TrainingClock) -> dict[str, int]:
    callback = ClockCallback(clock)
    trainer = pl.Trainer(max_steps=clock.steps, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         inference_mode=False, limit_val_batches=0, num_sanity_val_steps=0,
                         callbacks=[callback])
    with warnings.catch_warnings():
        # "does not have many workers" and similar: the data never leaves the process.
        warnings.filterwarnings("ignore", category=UserWarning, module="pytorch_lightning")
        trainer.fit(module, datamodule=datamodule)
    return callback.rows


def train_plain(module: PINN, datamodule: CollocationDataModule, clock: TrainingClock) -> dict[str, int]:
    datamodule.problem = module.problem
    points = datamodule.sample(0)
    optimizer = module.configure_optimizers()
    clock.start()
    for step in range(1, clock.steps + 1):
        optimizer.zero_grad(set_to_none=True)
        losses = module.condition_losses(points)
        loss = sum(module.loss_weights[name] * value for name, value in losses.items())
        loss.backward()
        optimizer.step()
        clock.step_done(step, module)
    return {name: len(p) for name, p in points.items()}


def main() -> None:
    parser = argument_parser("lightning-pde")
    parser.add_argument("--loop", choices=("trainer", "plain"), default="trainer",
                        help="pl.Trainer, or a bare loop over PINN.condition_losses")
    parser.add_argument("--engine", choices=("Autograd", "SinglePass"), default="Autograd",
                        help="derivative engine")
    parser.add_argument("--compile", action="store_true", help="PINN(compile=True): the loss through torch.compile")
    parser.add_argument("--fused-adam", action="store_true", help="torch.optim.Adam(fused=True)")
    options = parse_args(parser)
    configure_torch(options.seed, options.threads)
    module, datamodule = build(options.problem, options.engine, options.compile, options.fused_adam)
    if options.reference is not None:
        reference = Reference.load(options.reference)
    else:
        grid = module.problem.evaluation_grid()
        reference = Reference(grid.points.numpy(), grid.values.numpy())
    clock = TrainingClock(options.steps, options.probe_every, reference)
    clock.probe(0, module)
    train = train_with_trainer if options.loop == "trainer" else train_plain
    rows = train(module, datamodule, clock)
    notes = ("pl.Trainer, Sobol points, inputs normalised to [-1, 1], Xavier-normal init"
             if options.loop == "trainer" else "plain loop over PINN.condition_losses, otherwise as the Trainer run")
    emit(clock.result("lightning-pde", version("lightning-pde"), options, rows, notes=notes, loop=options.loop,
                      engine=options.engine, compile=options.compile, fused_adam=options.fused_adam))


if __name__ == "__main__":
    main()
