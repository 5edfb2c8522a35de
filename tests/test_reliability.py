"""Reliability: resume equals an uninterrupted run, non-finite losses stop training, checkpoint writes are atomic,
memory stays flat."""

import dataclasses
import gc
import math
import resource

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

import lightning_pde
from lightning_pde.callbacks import AdamThenLBFGS
from lightning_pde.checkpoint_io import AtomicCheckpointIO
from lightning_pde.cli import main
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.modules.finite import NonFiniteLossError, check_finite_losses
from lightning_pde.nn import MLP
from lightning_pde.problems import Poisson2D


def make_trainer(tmp_path, max_steps, callbacks=(), **kwargs):
    kwargs.setdefault("enable_checkpointing", False)
    return pl.Trainer(max_steps=max_steps, inference_mode=False, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=tmp_path, callbacks=list(callbacks),
                      accelerator="cpu", devices=1, plugins=[AtomicCheckpointIO()], **kwargs)


def tiny_module(lr_decay=True):
    return PINN(Poisson2D(n_pde=128, n_boundary=32), MLP([12, 12]),
                optimizer=lambda p: torch.optim.Adam(p, lr=5e-3),
                lr_scheduler=(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)) if lr_decay else None)


class StopAt(Callback):
    """Stop the run after step `step`, as a killed job would (after its last checkpoint)."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def run(tmp_path, ckpt_path=None, stop_at=None):
    """Seeded run with per-epoch resampling, an LR schedule and the Adam -> L-BFGS switch at step 50."""
    pl.seed_everything(0)
    module = tiny_module()
    callbacks = [AdamThenLBFGS(switch_step=50, lbfgs_iterations=40, iterations_per_step=5)]
    if stop_at:
        callbacks += [ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=stop_at,
                                      save_on_train_epoch_end=False), StopAt(stop_at)]
    data = CollocationDataModule(steps_per_epoch=10, resample_every=1, seed=3)
    trainer = make_trainer(tmp_path, -1, callbacks, enable_checkpointing=bool(stop_at))
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return module, trainer


def test_resume_from_a_mid_training_checkpoint_equals_an_uninterrupted_run(tmp_path):
    straight, trainer = run(tmp_path / "a")
    steps = trainer.global_step
    assert steps > 50  # went through the L-BFGS phase
    _, interrupted = run(tmp_path / "b", stop_at=25)  # mid-epoch, mid-schedule, before the switch
    assert interrupted.global_step == 25
    resumed, trainer = run(tmp_path / "c", ckpt_path=tmp_path / "b" / "ckpt" / "last.ckpt")
    assert trainer.global_step == steps
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert a.dtype == b.dtype and torch.equal(a, b), name  # bit for bit, L-BFGS phase included


class PoisonAt(Callback):
    """Make the PDE residual non-finite from step `step` on."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            pde = pl_module.conditions["pde"]
            pl_module.conditions["pde"] = dataclasses.replace(pde, residual=lambda f: pde.residual(f) * math.inf)


def test_non_finite_loss_stops_training_naming_term_and_step_and_keeps_last_checkpoint(tmp_path):
    pl.seed_everything(0)
    module = tiny_module(lr_decay=False)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=5,
                                 save_on_train_epoch_end=False)
    trainer = make_trainer(tmp_path, 40, [checkpoint, PoisonAt(12)], enable_checkpointing=True)
    with pytest.raises(NonFiniteLossError, match=r"PINN: non-finite loss term at step 12: pde=(inf|nan)"):
        trainer.fit(module, datamodule=CollocationDataModule(steps_per_epoch=10))
    kept = lightning_pde.load(tmp_path / "last.ckpt")
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 10
    assert all(torch.isfinite(p).all() for p in kept.parameters())
    # The step with the bad term never reached the optimizer.
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_check_finite_losses_names_every_bad_term():
    check_finite_losses("M", {"a": torch.tensor(1.0)}, 3)
    with pytest.raises(NonFiniteLossError, match=r"M: non-finite loss term at step 7: b=nan, c=inf"):
        check_finite_losses("M", {"a": torch.tensor(1.0), "b": torch.tensor(math.nan),
                                  "c": torch.tensor(math.inf)}, 7)


def test_cli_reports_a_diverged_run_in_one_line(tmp_path, capsys):
    args = ["fit", "--model=PINN", "--model.problem=Poisson2D", "--model.net=MLP", "--model.net.hidden=[8]",
            "--model.optimizer=torch.optim.SGD", "--model.optimizer.lr=1e30", "--data=CollocationDataModule",
            "--data.steps_per_epoch=5", "--trainer.max_steps=50", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp_path}"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "lpde: error: PINN: non-finite loss term at step" in err and "Traceback" not in err


def test_interrupted_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "model.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.arange(4.0)}, path)

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "w": torch.zeros(4)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]  # no partial temporary file left behind
    io.save_checkpoint({"step": 3}, path)
    assert torch.load(path, weights_only=True) == {"step": 3}


def test_cli_trainers_write_checkpoints_atomically():
    from lightning_pde.cli import LPDECLI

    cli = LPDECLI(args=["--model=PINN", "--model.problem=Poisson2D", "--data=CollocationDataModule",
                        "--trainer.logger=false"], run=False)
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


class Memory(Callback):
    def __init__(self):
        self.samples = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step in (100, 400):
            gc.collect()
            tensors = sum(1 for o in gc.get_objects() if torch.is_tensor(o))
            self.samples.append((tensors, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def test_memory_stays_flat_over_a_long_run(tmp_path):
    pl.seed_everything(0)
    memory = Memory()
    trainer = make_trainer(tmp_path, 400, [memory], log_every_n_steps=1)
    trainer.fit(tiny_module(), datamodule=CollocationDataModule(steps_per_epoch=20, resample_every=1))
    (tensors_early, rss_early), (tensors_late, rss_late) = memory.samples
    assert tensors_late <= tensors_early + 5, memory.samples  # nothing accumulates per step
    assert rss_late - rss_early < 50_000, memory.samples  # ru_maxrss is in KiB: under 50 MB growth in 300 steps
