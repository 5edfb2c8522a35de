"""The configs/pid set end to end through the CLI at tiny sizes, checkpoints reloading with no arguments, and DDP."""

from __future__ import annotations

import json
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
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
TINY_MIXTURE = ["--model.init_args.backbone.init_args.hidden=[16]", "--model.init_args.batch_size=32",
                "--data.init_args.n_train=320", "--data.init_args.n_val=64", "--data.init_args.batch_size=32",
                "--trainer.max_steps=6", "--trainer.val_check_interval=3", "--model.init_args.n_grid=8"]
TINY_FIELDS = ["--model.init_args.data_shape=[2,8,8]", "--data.init_args.n=8", "--data.init_args.n_train=64",
               "--data.init_args.n_val=8", "--data.init_args.batch_size=8", "--trainer.max_steps=3"]


def fit(name: str, root: Path, *extra: str) -> Path:
    """Fit a configs/pid config with every output under `root`; returns the run's log directory."""
    before = set(root.rglob("version_*"))
    assert main(["fit", "--config", str(PID / f"{name}.yaml"), *QUIET, f"--trainer.default_root_dir={root}",
                 *extra]) in (0, None)
    (log_dir,) = set(root.rglob("version_*")) - before
    return log_dir


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """An empty working directory that must stay empty: a run writes only under its log directory."""
    path = tmp_path / "cwd"
    path.mkdir()
    monkeypatch.chdir(path)
    yield path
    assert not list(path.iterdir()), f"a run wrote into the working directory: {list(path.iterdir())}"


def test_mixture_pid_config_runs_plots_and_reloads(tmp_path, cwd):
    log_dir = fit("mixture_pid", tmp_path / "runs", *TINY_MIXTURE)
    assert (log_dir / "samples.png").is_file()
    student = lightning_pde.load(log_dir / "checkpoints" / "mixture_pid.ckpt")
    assert student.sample(5).shape == (5, 2)


def test_mixture_teacher_config_runs_and_keeps_the_data_scale(tmp_path, cwd):
    log_dir = fit("mixture_teacher", tmp_path / "runs",
                  *[arg for arg in TINY_MIXTURE if "n_grid" not in arg and "model.init_args.batch" not in arg])
    teacher = lightning_pde.load(log_dir / "checkpoints" / "mixture_teacher.ckpt")
    assert type(teacher).__name__ == "EDMTeacher"
    # the normalisation comes from the mixture data (per-coordinate std sqrt(2 + 0.01)), kept in the checkpoint
    torch.testing.assert_close(teacher.data_std.flatten(), torch.full((2,), 1.418), atol=0.05, rtol=0)
    samples = teacher.sample(64, steps=4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (64, 2) and bool(samples.isfinite().all())


def test_poisson_students_take_the_teacher_checkpoint_explicitly(tmp_path, cwd):
    runs = tmp_path / "runs"
    teacher_dir = fit("poisson_teacher", runs, *TINY_FIELDS, "--model.init_args.backbone.init_args.width=8",
                      "--model.init_args.sample_steps=3")
    teacher = teacher_dir / "checkpoints" / "last.ckpt"
    pid_dir = fit("poisson_pid", runs, *TINY_FIELDS, f"--model.teacher={teacher}", "--model.init_args.batch_size=4",
                  "--model.init_args.n_grid=4")
    piddm_dir = fit("poisson_piddm", runs, *TINY_FIELDS, f"--model.teacher={teacher}",
                    "--model.init_args.batch_size=4", "--model.init_args.n_pairs=8",
                    "--model.init_args.teacher_steps=3")
    for log_dir, name, cls in ((teacher_dir, "poisson_teacher", "EDMTeacher"), (pid_dir, "poisson_pid", "PIDStudent"),
                               (piddm_dir, "poisson_piddm", "PIDDM")):
        module = lightning_pde.load(log_dir / "checkpoints" / f"{name}.ckpt")
        assert type(module).__name__ == cls
        assert module.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 2, 8, 8)
    assert (pid_dir / "samples.png").is_file() and (piddm_dir / "samples.png").is_file()


@pytest.mark.parametrize("name", ["poisson_pid", "poisson_piddm"])
@pytest.mark.parametrize("teacher, message", [
    (None, "no teacher given: pass a teacher checkpoint with --model.teacher=PATH"),
    ("missing.ckpt", "teacher checkpoint 'missing.ckpt' does not exist"),
])
def test_a_student_without_its_teacher_is_one_clear_error(name, teacher, message, tmp_path, cwd, capsys):
    # no default path: a teacher left in the working directory by an earlier run must not be picked up silently
    extra = [] if teacher is None else [f"--model.teacher={teacher}"]
    try:
        code = main(["fit", "--config", str(PID / f"{name}.yaml"), *QUIET, *TINY_FIELDS,
                     f"--trainer.default_root_dir={tmp_path / 'runs'}", *extra])
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == 2
    captured = capsys.readouterr()
    assert message in captured.err + captured.out


@pytest.mark.slow  # overlaps tests/test_ddp.py's per-family DDP runs; kept for make test-slow
def test_pid_ddp_on_two_cpu_processes_with_the_configs_callbacks(tmp_path):
    # the shipped callbacks (checkpoint, sample plot) included: the plot asks for the log directory, a collective
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1"}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run([sys.executable, "-m", "lightning_pde", "fit", "--config", str(PID / "mixture_pid.yaml"),
                             *QUIET, *TINY_MIXTURE, "--trainer.strategy=ddp", "--trainer.devices=2",
                             "--trainer.accelerator=cpu", f"--trainer.default_root_dir={tmp_path / 'runs'}"],
                            capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    (log_dir,) = (tmp_path / "runs").rglob("version_*")
    assert (log_dir / "samples.png").is_file() and (log_dir / "checkpoints" / "mixture_pid.ckpt").is_file()
    assert not list(cwd.iterdir())


def load_benchmark():
    """benchmarks/pid.py as a module (benchmarks are scripts that import their neighbours by name)."""
    import importlib.util

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("pid_benchmark", ROOT / "benchmarks" / "pid.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_pid_benchmark_trains_into_its_own_directory_and_hands_the_teacher_over(tmp_path, cwd):
    # It used to score whatever checkpoints/pid/*.ckpt it found, e.g. a tutorial's, and overwrite a committed JSON.
    benchmark = load_benchmark()
    work = tmp_path / "work"
    tiny = {"poisson_teacher": [*TINY_FIELDS, "--model.init_args.backbone.init_args.width=8",
                                "--model.init_args.sample_steps=3"],
            "poisson_pid": [*TINY_FIELDS, "--model.init_args.batch_size=4", "--model.init_args.n_grid=4"]}
    checkpoints, seconds = benchmark.train_all(work, names=["poisson_teacher", "poisson_pid"], extra=tiny)
    assert set(seconds) == set(checkpoints) == {"poisson_teacher", "poisson_pid"}
    assert all(Path(path).is_relative_to(work / name) for name, path in checkpoints.items())
    assert json.loads((work / "checkpoints.json").read_text()) == checkpoints
    teacher, student = (lightning_pde.load(checkpoints[name]) for name in ("poisson_teacher", "poisson_pid"))
    for key, value in teacher.state_dict().items():  # the student distilled the teacher trained in this run
        torch.testing.assert_close(student.teacher.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint for \['mixture_pid', 'mixture_teacher'"):
        benchmark.recorded_checkpoints(work)  # --reuse needs every config's checkpoint
    with pytest.raises(ValueError, match="poisson_pid distils poisson_teacher, which is not trained before it"):
        benchmark.train_all(tmp_path / "other", names=["poisson_pid"])
