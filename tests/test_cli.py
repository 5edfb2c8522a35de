import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pde.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
POISSON = str(ROOT / "configs" / "pinn" / "poisson2d.yaml")
TINY = ["--model.init_args.problem.init_args.n_pde=64", "--model.init_args.problem.init_args.n_boundary=16",
        "--model.init_args.net.init_args.hidden=[8]", "--trainer.enable_progress_bar=false",
        "--data.init_args.steps_per_epoch=5", "--trainer.max_steps=10", "--trainer.callbacks=[]"]


def lpde(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1"}
    return subprocess.run([sys.executable, "-m", "lightning_pde", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c.relative_to(ROOT)) for c in CONFIGS])
def test_every_config_parses(config, capsys):
    # An overlay (trainer settings only) is checked on top of a method's config, as it is used.
    base = ["--config", POISSON] if config.name == "overlay.yaml" else []
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *base, "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "class_path" in out
    if base:
        assert "strategy: ddp" in out


def printed_checkpoint(stdout: str) -> Path:
    """The checkpoint `lpde fit` says it left (its last lines name it and the log directory)."""
    (line,) = [line for line in stdout.splitlines() if line.startswith("lpde: checkpoint: ")]
    return Path(line.removeprefix("lpde: checkpoint: "))


def test_fit_test_predict_end_to_end(tmp_path):
    fit = lpde("fit", "--config", POISSON, *TINY, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    ckpt = printed_checkpoint(fit.stdout)
    assert ckpt == tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    import lightning_pde
    from lightning_pde.modules import PINN

    for loaded in (lightning_pde.load(ckpt), PINN.load_from_checkpoint(ckpt)):
        assert loaded.problem.name == "Poisson2D" and loaded.net.hidden == [8]

    test = lpde("test", "--config", POISSON, *TINY, f"--ckpt_path={ckpt}", cwd=tmp_path)
    assert test.returncode == 0, test.stderr
    assert "test/rel_l2" in test.stdout

    out = tmp_path / "solution.npz"
    predict = lpde("predict", "--config", POISSON, *TINY, f"--ckpt_path={ckpt}",
                   f"--trainer.callbacks=[{{class_path: SolutionWriter, init_args: {{path: {out}}}}}]", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    data = np.load(out)
    assert data["u"].shape == (101 * 101, 1) and data["points"].shape == (101 * 101, 2)
    assert tuple(data["grid_shape"]) == (101, 101) and list(data["input_names"]) == ["x1", "x2"]
    assert data["reference"].shape == data["u"].shape

    # predict with no writer configured still writes the grid, under the log directory
    default = lpde("predict", "--config", POISSON, *TINY, f"--ckpt_path={ckpt}", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert list((tmp_path / "lightning_logs").rglob("predictions.npz"))


def test_a_run_shorter_than_an_epoch_leaves_last_ckpt_and_says_where(tmp_path):
    # 30 steps of a 500-step epoch: Lightning alone saves at epoch or validation ends, so it wrote nothing.
    root = tmp_path / "root"
    args = [a for a in TINY if not a.startswith(("--data.init_args.steps_per_epoch", "--trainer.max_steps"))]
    fit = lpde("fit", "--config", POISSON, *args, "--trainer.max_steps=30", f"--trainer.default_root_dir={root}",
               cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    run = root / "lightning_logs" / "version_0"
    assert printed_checkpoint(fit.stdout) == run / "checkpoints" / "last.ckpt"
    assert f"lpde: logs and plots: {run}" in fit.stdout
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 30
    # ... and a run that ends between two checkpointed epochs leaves its final step, not the last epoch's
    fit = lpde("fit", "--config", POISSON, *args, "--data.init_args.steps_per_epoch=10", "--trainer.max_steps=25",
               f"--trainer.default_root_dir={root}", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    last = printed_checkpoint(fit.stdout)
    assert last == root / "lightning_logs" / "version_1" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 25
    assert list(tmp_path.iterdir()) == [root]


def test_a_plain_trainer_with_last_checkpoint_saves_the_final_step(tmp_path):
    import pytorch_lightning as pl

    from lightning_pde.checkpoint_io import LastCheckpoint
    from lightning_pde.data import CollocationDataModule
    from lightning_pde.modules import PINN
    from lightning_pde.nn import MLP
    from lightning_pde.problems import Poisson2D

    trainer = pl.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         inference_mode=False, accelerator="cpu", limit_val_batches=0, default_root_dir=tmp_path,
                         callbacks=[LastCheckpoint()])
    trainer.fit(PINN(Poisson2D(n_pde=16, n_boundary=8), MLP(hidden=[4])),
                datamodule=CollocationDataModule(steps_per_epoch=100))
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


@pytest.mark.parametrize("args", [
    ["--trainer.devices=-3"], ["--trainer.devices=abc"], ["--trainer.accelerator=bogus"],
    ["--trainer.max_steps=abc"], ["--trainer.precision=7"], ["--trainer.strategy=nope"],
    ["--trainer.accumulate_grad_batches=0"], ["--trainer.check_val_every_n_epoch=0"], ["--trainer.logger=nope"],
    ["--trainer.limit_val_batches=abc"], ["--trainer.max_time=abc"], ["--trainer.plugins=[Nope]"],
])
def test_a_bad_trainer_value_is_one_error_line_with_status_2(args, capsys):
    # In process (each a few hundred ms): main() is what `lpde` runs.
    key, _, value = args[0].removeprefix("--").partition("=")
    assert main(["fit", "--config", POISSON, *TINY, *args]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("lpde: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    (line,) = errors
    assert key.removeprefix("trainer.") in line and value.strip("[]") in line, line
    assert len(line) < 400, line


@pytest.mark.parametrize(("args", "message"), [
    (["--model.init_args.no_such_key=1"], "no_such_key"),
    (["--model.init_args.problem=NoSuchProblem"], "NoSuchProblem"),
    (["--model.init_args.problem=Burgers", "--model.init_args.problem.init_args.nu=-1"], "nu must be"),
    (["--ckpt_path=/nonexistent/model.ckpt"], "does not exist"),
])
def test_bad_input_is_one_clear_message(args, message, tmp_path):
    command = "test" if any(a.startswith("--ckpt_path") for a in args) else "fit"
    result = lpde(command, "--config", POISSON, *TINY, *args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    if message == "nu must be":  # a constructor's own error is shown alone, not inside jsonargparse's report
        assert "lpde: error: Burgers: nu must be a finite number > 0, got -1.0" in result.stderr
        assert "Union subtypes" not in result.stderr, result.stderr


def test_ddp_on_two_cpu_processes_trains_and_checkpoints(tmp_path):
    """Lightning's own DDP strategy (gloo): rank 1 is a second `python -m lightning_pde` process."""
    result = lpde("fit", "--config", POISSON, *TINY, "--trainer.strategy=ddp", "--trainer.devices=2",
                  "--trainer.accelerator=cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    assert "All distributed processes registered" in result.stderr + result.stdout
    ckpt = printed_checkpoint(result.stdout)  # printed once, by rank 0
    assert ckpt.name == "last.ckpt" and ckpt.is_file()
    import lightning_pde

    assert lightning_pde.load(ckpt).problem.name == "Poisson2D"


def test_short_names_mean_the_registered_class_when_another_library_has_the_same_name(tmp_path, monkeypatch):
    # torchvision.ops.MLP is an nn.Module named MLP too; once imported, jsonargparse alone refuses ``MLP`` as
    # ambiguous (seen on a GPU machine with torchvision installed). A module like it stands in for torchvision.
    (tmp_path / "other_library.py").write_text(
        "import torch\n\nclass MLP(torch.nn.Module):\n    def __init__(self, hidden=(1,)):\n        super().__init__()\n"
        "        self.linear = torch.nn.Linear(2, 1)\n\n    def forward(self, x):\n        return torch.tanh(self.linear(x))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import other_library  # noqa: F401

    from lightning_pde.cli import LPDECLI
    from lightning_pde.nn import MLP

    cli = LPDECLI(run=False, args=["--config", POISSON, *TINY, f"--trainer.default_root_dir={tmp_path}"])
    assert type(cli.model.net) is MLP
    # a name lightning-pde does not register still goes through jsonargparse's own search
    cli = LPDECLI(run=False, args=["--config", POISSON, *TINY, "--model.init_args.net=other_library.MLP",
                                   f"--trainer.default_root_dir={tmp_path}"])
    assert type(cli.model.net).__module__ == "other_library"
