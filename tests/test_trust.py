"""A checkpoint or spec is data: loading one never calls anything but the classes meant to be built from specs."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import lightning_pde
from lightning_pde import CHECKPOINT_CLASS_KEY
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Poisson2D
from lightning_pde.spec import from_spec, import_class

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real checkpoint of a tiny PINN, one training step."""
    directory = tmp_path_factory.mktemp("trust")
    module = PINN(Poisson2D(n_pde=16, n_boundary=8), MLP(hidden=[4]))
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, inference_mode=False, accelerator="cpu",
                         limit_val_batches=0, default_root_dir=directory)
    trainer.fit(module, datamodule=CollocationDataModule(steps_per_epoch=1))
    path = directory / "good.ckpt"
    trainer.save_checkpoint(path)
    return path


def crafted(source: Path, target: Path, edit) -> Path:
    contents = torch.load(source, weights_only=True)
    edit(contents)
    torch.save(contents, target)
    return target


def marker_spec(marker: Path) -> dict:
    return {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}


def test_good_checkpoint_loads(checkpoint):
    assert lightning_pde.load(checkpoint).problem.name == "Poisson2D"


@pytest.mark.parametrize("where", ["problem", "net", "derivatives"])
def test_a_spec_naming_a_function_runs_nothing(checkpoint, tmp_path, where):
    marker = tmp_path / "MARKER"
    evil = crafted(checkpoint, tmp_path / "evil.ckpt",
                   lambda c: c["hyper_parameters"].__setitem__(where, marker_spec(marker)))
    for load in (lightning_pde.load, PINN.load_from_checkpoint):
        with pytest.raises(ValueError, match="refusing to build 'os.system'"):
            load(evil)
    assert not marker.exists()


@pytest.mark.parametrize("key", [CHECKPOINT_CLASS_KEY, "_class_path"])
@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "subprocess.Popen", "torch.nn.Linear",
                                    "lightning_pde.problems.Poisson2D"])
def test_the_module_class_key_must_name_a_lightning_pde_module(checkpoint, tmp_path, key, target):
    def edit(contents):
        contents.pop(CHECKPOINT_CLASS_KEY)
        (contents if key == CHECKPOINT_CLASS_KEY else contents["hyper_parameters"])[key] = target

    evil = crafted(checkpoint, tmp_path / "evil.ckpt", edit)
    with pytest.raises(ValueError, match=f"evil.ckpt.*refusing to build {target!r}"):
        lightning_pde.load(evil)


def test_a_nested_spec_is_checked_before_the_outer_class_is_built(tmp_path):
    marker = tmp_path / "MARKER"
    spec = {"class_path": "lightning_pde.nn.mlp.MLP", "init_args": {"hidden": [4], "embedding": marker_spec(marker)}}
    with pytest.raises(ValueError, match="refusing to build 'os.system'"):
        from_spec(spec)
    assert not marker.exists()


@pytest.mark.parametrize(("spec", "message"), [
    ({"class_path": "collections.OrderedDict"}, "collections.OrderedDict is neither Configurable nor registered"),
    ({"class_path": "os.path"}, "it is a module, not a class"),
    ({"class_path": 3}, "class_path must be a non-empty string, got 3"),
    ({"class_path": "MLP", "init_args": [1, 2]}, "init_args of 'MLP' must be a mapping"),
    ({"class_path": "no_such_module_xyz.Thing"}, "cannot import class 'no_such_module_xyz.Thing'"),
])
def test_bad_specs_name_the_class_path(spec, message):
    with pytest.raises(ValueError, match=message):
        from_spec(spec)


def test_built_ins_registered_classes_and_their_subclasses_are_buildable():
    assert isinstance(from_spec({"class_path": "Burgers", "init_args": {"nu": 0.01}}).nu, float)
    assert import_class("lightning_pde.modules.pinn.PINN", base=pl.LightningModule) is PINN
    assert import_class("PINN") is PINN
    with pytest.raises(ValueError, match="expected a subclass of pytorch_lightning.core.module.LightningModule"):
        import_class("lightning_pde.nn.mlp.MLP", base=pl.LightningModule)


def test_a_problem_in_a_users_own_module_still_round_trips(tmp_path, monkeypatch):
    # docs/design.md: a problem defined in a user's own, unregistered module works everywhere a built-in one does.
    (tmp_path / "my_problems.py").write_text(textwrap.dedent("""
        from lightning_pde.problems import Poisson2D

        class MyPoisson(Poisson2D):
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = from_spec({"class_path": "my_problems.MyPoisson", "init_args": {"n_pde": 8}})
    assert type(problem).__name__ == "MyPoisson" and problem.n_pde == 8


def test_lpde_test_with_a_crafted_checkpoint_runs_nothing(checkpoint, tmp_path):
    # The CLI copies a checkpoint's hyperparameters into its config (LightningCLI's ckpt_path handling); the same
    # rule applies there, before jsonargparse builds anything.
    marker = tmp_path / "MARKER"

    def edit(contents):
        contents["hyper_parameters"]["_class_path"] = "lightning_pde.modules.pinn.PINN"
        contents["hyper_parameters"]["net"] = {"class_path": "torch.nn.Linear",
                                               "init_args": {"in_features": 2, "out_features": 1}}
        contents["hyper_parameters"]["derivatives"] = marker_spec(marker)

    evil = crafted(checkpoint, tmp_path / "evil.ckpt", edit)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1"}
    result = subprocess.run([sys.executable, "-m", "lightning_pde", "test", "--config",
                             str(ROOT / "configs" / "pinn" / "poisson2d.yaml"), f"--ckpt_path={evil}",
                             f"--trainer.default_root_dir={tmp_path}", "--trainer.callbacks=[]"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "lpde: error:" in result.stderr and "evil.ckpt" in result.stderr
    assert "refusing to build 'torch.nn.Linear'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
