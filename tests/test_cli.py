import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def test_fit_test_predict_end_to_end(tmp_path):
    fit = lpde("fit", "--config", POISSON, *TINY, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    (ckpt,) = (tmp_path / "lightning_logs").rglob("*.ckpt")
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
    (ckpt,) = (tmp_path / "lightning_logs").rglob("*.ckpt")
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
