"""The configs/pid set end to end through the CLI at tiny sizes, checkpoints reloading with no arguments, and DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lightning_pde
from lightning_pde.cli import main

ROOT = Path(__file__).resolve().parents[1]
PID = ROOT / "configs" / "pid"
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=false"]
TINY_MIXTURE = ["--model.init_args.backbone.init_args.hidden=[16]", "--model.init_args.batch_size=32",
                "--data.init_args.n_train=320", "--data.init_args.n_val=64", "--data.init_args.batch_size=32",
                "--trainer.max_steps=6", "--trainer.val_check_interval=3", "--model.init_args.n_grid=8"]
TINY_FIELDS = ["--model.init_args.data_shape=[2,8,8]", "--data.init_args.n=8", "--data.init_args.n_train=64",
               "--data.init_args.n_val=8", "--data.init_args.batch_size=8", "--trainer.max_steps=3"]


def fit(name: str, *extra: str) -> None:
    assert main(["fit", "--config", str(PID / f"{name}.yaml"), *QUIET, *extra]) in (0, None)


def test_mixture_pid_config_runs_plots_and_reloads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit("mixture_pid", *TINY_MIXTURE)
    assert (tmp_path / "docs" / "images" / "pid_mixture.png").is_file()
    student = lightning_pde.load(tmp_path / "checkpoints" / "pid" / "mixture_pid.ckpt")
    assert student.sample(5).shape == (5, 2)


def test_mixture_teacher_config_runs_and_keeps_the_data_scale(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit("mixture_teacher", *[arg for arg in TINY_MIXTURE if "n_grid" not in arg and "model.init_args.batch" not in arg])
    teacher = lightning_pde.load(tmp_path / "checkpoints" / "pid" / "mixture_teacher.ckpt")
    assert type(teacher).__name__ == "EDMTeacher"
    # the normalisation comes from the mixture data (per-coordinate std sqrt(2 + 0.01)), kept in the checkpoint
    torch.testing.assert_close(teacher.data_std.flatten(), torch.full((2,), 1.418), atol=0.05, rtol=0)
    samples = teacher.sample(64, steps=4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (64, 2) and bool(samples.isfinite().all())


def test_poisson_configs_run_in_sequence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit("poisson_teacher", *TINY_FIELDS, "--model.init_args.backbone.init_args.width=8",
        "--model.init_args.sample_steps=3")
    fit("poisson_pid", *TINY_FIELDS, "--model.init_args.batch_size=4", "--model.init_args.n_grid=4")
    fit("poisson_piddm", *TINY_FIELDS, "--model.init_args.batch_size=4", "--model.init_args.n_pairs=8",
        "--model.init_args.teacher_steps=3")
    for name, cls in (("poisson_teacher", "EDMTeacher"), ("poisson_pid", "PIDStudent"), ("poisson_piddm", "PIDDM")):
        module = lightning_pde.load(tmp_path / "checkpoints" / "pid" / f"{name}.ckpt")
        assert type(module).__name__ == cls
        assert module.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 2, 8, 8)
    assert (tmp_path / "docs" / "images" / "pid_poisson_piddm.png").is_file()


def test_bad_teacher_path_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["fit", "--config", str(PID / "poisson_pid.yaml"), *QUIET, *TINY_FIELDS])
    except SystemExit as exit_info:
        code = exit_info.code
    assert code not in (0, None)
    captured = capsys.readouterr()
    assert "teacher checkpoint 'checkpoints/pid/poisson_teacher.ckpt' does not exist" in captured.err + captured.out


def test_pid_ddp_on_two_cpu_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1"}
    result = subprocess.run([sys.executable, "-m", "lightning_pde", "fit", "--config", str(PID / "mixture_pid.yaml"),
                             *QUIET, *TINY_MIXTURE, "--trainer.strategy=ddp", "--trainer.devices=2",
                             "--trainer.accelerator=cpu", "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
