"""The L-BFGS schedules (AdamThenLBFGS, TimeMarching) against the Trainer's max_steps, and their DDP set-up.
The two-process runs (replicas identical after L-BFGS steps on different shards) are in tests/test_ddp.py."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lightning_pde import registry
from lightning_pde.callbacks import AdamThenLBFGS
from lightning_pde.callbacks.lbfgs import DistributedLBFGS, fit_schedule
from lightning_pde.callbacks.time_marching import TimeMarching
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.nn.time_windows import TimeWindows
from lightning_pde.problems import Burgers
from lightning_pde.problems.heat import Heat

ROOT = Path(__file__).resolve().parents[1]


def trainer(tmp_path, callbacks, **kwargs):
    kwargs = {"accelerator": "cpu", "devices": 1, **kwargs}
    return pl.Trainer(inference_mode=False, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, default_root_dir=tmp_path, callbacks=list(callbacks),
                      limit_val_batches=0, **kwargs)


class MaxStepsAtTrainStart(pl.Callback):
    """Check trainer.max_steps once every callback's on_fit_start has run (failing there, not after a long run)."""

    def __init__(self, expected):
        self.expected = expected

    def on_train_start(self, trainer, pl_module):
        assert trainer.max_steps == self.expected, f"max_steps became {trainer.max_steps}"


def test_fit_schedule_keeps_a_schedule_that_fits_and_shrinks_one_that_does_not():
    assert fit_schedule(2000, 160, -1) == (2000, 160)  # no limit given
    assert fit_schedule(2000, 160, 5000) == (2000, 160)  # the limit is longer: the schedule ends the run
    assert fit_schedule(2000, 160, 2160) == (2000, 160)
    assert fit_schedule(2000, 160, 200) == (185, 15)  # configs/pinn/burgers.yaml with --trainer.max_steps=200
    assert fit_schedule(2000, 160, 6) == (5, 1)  # at least one L-BFGS step ...
    assert fit_schedule(5, 1000, 10) == (1, 9)  # ... and one of the first optimizer, while the limit allows both
    assert fit_schedule(2000, 160, 1) == (1, 0)
    assert fit_schedule(0, 10, 3) == (0, 3)  # L-BFGS only
    assert fit_schedule(10, 0, 3) == (3, 0)  # no L-BFGS
    assert fit_schedule(2000, 160, 0) == (0, 0)


@pytest.mark.parametrize("max_steps, steps, switch, iterations", [
    (-1, 5 + 3, 5, 45),  # no limit: the callback's schedule, 20 + 20 + 5 iterations
    (100, 5 + 3, 5, 45),  # a longer limit: the schedule still ends the run
    (4, 4, 2, 40),  # a shorter limit wins: 2 Adam steps, then 2 L-BFGS steps of 20 iterations
])
def test_adam_then_lbfgs_keeps_inside_a_given_max_steps(tmp_path, max_steps, steps, switch, iterations):
    pl.seed_everything(0)
    module = PINN(Burgers(n_pde=128, n_initial=32, n_boundary=32), MLP([8]))
    lbfgs = AdamThenLBFGS(switch_step=5, lbfgs_iterations=45, iterations_per_step=20, tolerance_grad=0,
                          tolerance_change=0)
    switched_at = []

    class Switch(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if lbfgs.switched and not switched_at:
                switched_at.append(trainer.global_step - 1)

    t = trainer(tmp_path, [lbfgs, Switch()], max_steps=max_steps)
    t.fit(module, datamodule=CollocationDataModule(steps_per_epoch=4))
    assert t.global_step == steps and switched_at == [switch] and lbfgs.iterations == iterations
    assert isinstance(t.optimizers[0], DistributedLBFGS) and t.optimizers[0].reduce is None  # one process


def test_max_steps_on_the_command_line_wins_over_the_burgers_config(tmp_path):
    """`lpde fit --config configs/pinn/burgers.yaml --trainer.max_steps=12` stops at step 12 (it ran past step 2000:
    AdamThenLBFGS reset max_steps to its own schedule), with the switch and an L-BFGS step inside the limit."""
    from lightning_pde.cli import LPDECLI

    registry.load_all()
    args = ["--config", str(ROOT / "configs" / "pinn" / "burgers.yaml"), "--trainer.max_steps=12",
            f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false", "--trainer.logger=false",
            "--trainer.callbacks.filename=" + str(tmp_path / "solution.png"),
            "--model.init_args.problem.init_args.n_pde=128", "--model.init_args.problem.init_args.n_initial=16",
            "--model.init_args.problem.init_args.n_boundary=16", "--model.init_args.net.init_args.hidden=[8]",
            "--data.init_args.steps_per_epoch=5"]
    cli = LPDECLI(run=False, args=args)
    lbfgs = next(c for c in cli.trainer.callbacks if isinstance(c, AdamThenLBFGS))
    assert (lbfgs.switch_step, lbfgs.lbfgs_iterations, lbfgs.iterations_per_step) == (2000, 8000, 50)
    cli.trainer.callbacks.append(MaxStepsAtTrainStart(12))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 12
    assert lbfgs.switched and 0 < lbfgs.iterations <= 50  # fit_schedule(2000, 160, 12) == (11, 1)


def windowed_heat():
    return PINN(Heat(dim=1, n_pde=128, n_initial=32, n_boundary=32), TimeWindows(MLP([8]), n_windows=3),
                loss_weights={"initial": 10.0}).double()


def test_time_marching_fits_every_window_inside_a_given_max_steps(tmp_path):
    torch.manual_seed(0)
    marching = TimeMarching(adam_steps=20, lbfgs_iterations=300, iterations_per_step=50)  # 3 x (20 + 6) = 78 steps
    windows = []

    class Windows(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            windows.append(marching.window)

    t = trainer(tmp_path, [marching, Windows()], max_steps=30, max_epochs=-1)
    t.fit(windowed_heat(), datamodule=CollocationDataModule(sampling="uniform", steps_per_epoch=10))
    # each window's share is 10 steps: fit_schedule(20, 6, 10) == (8, 2), so 8 Adam steps and up to 100 iterations
    assert marching.finished and t.global_step <= 30
    assert sorted(set(windows)) == [0, 1, 2] and windows == sorted(windows)
    assert all(windows.count(k) <= 10 for k in range(3)) and windows.count(0) >= 9


def test_time_marching_refuses_a_max_steps_below_one_step_per_window(tmp_path):
    marching = TimeMarching(adam_steps=20, lbfgs_iterations=300, iterations_per_step=50)
    with pytest.raises(ValueError, match="TimeMarching: max_steps=2 leaves less than one step for each of the 3 "
                                         "windows; give max_steps >= 3"):
        trainer(tmp_path, [marching], max_steps=2, max_epochs=-1).fit(
            windowed_heat(), datamodule=CollocationDataModule(steps_per_epoch=10))


def test_ddp_set_up_of_the_lbfgs_callbacks(tmp_path):
    """Checked on a two-process Trainer before it launches anything: AdamThenLBFGS refuses float64=True (DDP's
    gradient buckets keep their dtype), and TimeMarching with a TimeWindows network tells DDP to expect unused
    parameters (the windows not in training), which it would otherwise wait for forever."""
    ddp = trainer(tmp_path, [], strategy="ddp", devices=2)
    assert ddp.world_size == 2 and not ddp.strategy._ddp_kwargs.get("find_unused_parameters")
    module = windowed_heat()
    with pytest.raises(ValueError, match="AdamThenLBFGS: float64=True cannot switch dtypes under DDP .*"
                                         "--trainer.precision=64-true"):
        AdamThenLBFGS(float64=True).setup(ddp, module, "fit")
    AdamThenLBFGS(float64=False).setup(ddp, module, "fit")
    TimeMarching().setup(ddp, module, "fit")
    assert ddp.strategy._ddp_kwargs["find_unused_parameters"] is True
