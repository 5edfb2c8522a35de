"""The GPU code paths: each method trains on a CUDA device and its checkpoint reloads on the CPU with the same
predictions. Skipped where no CUDA device is present (CI has none); run on a GPU machine with

    python -m pytest -q tests/test_gpu.py
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import lightning_pde
from lightning_pde.data import CollocationDataModule
from lightning_pde.derivatives import Autograd, Forward, ForwardLaplacian, SinglePass, Stein
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP, TTMLP
from lightning_pde.problems import Heat, Poisson2D
from lightning_pde.quant import smx_quantize, smx_quantize_reference

#: LPDE_TEST_DEVICE=cpu runs the same tests on the CPU (to check the tests themselves where there is no GPU)
DEVICE = os.environ.get("LPDE_TEST_DEVICE", "cuda")
ACCELERATOR = "gpu" if DEVICE == "cuda" else DEVICE
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
             num_sanity_val_steps=0, inference_mode=False)


def fit_on_gpu(model: pl.LightningModule, tmp_path: Path, steps: int = 20, **kwargs) -> Path:
    """Train `model` for `steps` steps on the GPU and return the path of its saved checkpoint."""
    trainer = pl.Trainer(accelerator=ACCELERATOR, devices=1, max_steps=steps, default_root_dir=tmp_path,
                         enable_checkpointing=False, **QUIET, **kwargs)
    trainer.fit(model, datamodule=CollocationDataModule(steps_per_epoch=10, seed=0))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def fixed_loss(model: PINN, device: str) -> float:
    model.to(device)
    generator = torch.Generator().manual_seed(1)
    points = {name: c.sample(64, generator, "uniform").to(device) for name, c in model.conditions.items()}
    return float(sum(model.loss_weights[k] * v.detach() for k, v in model.condition_losses(points).items()))


@pytest.mark.parametrize("bits", [8, 12])
def test_smx_on_cuda_is_bit_for_bit_the_cpu_result(bits):
    x = torch.randn(96, 40, generator=torch.Generator().manual_seed(bits)) * torch.logspace(-3, 3, 40)
    on_gpu = smx_quantize(x.to(DEVICE), bits=bits).cpu()
    assert torch.equal(on_gpu, smx_quantize(x, bits=bits))
    assert torch.equal(on_gpu, smx_quantize_reference(x, bits=bits))


@pytest.mark.parametrize("engine", [Autograd, Forward, ForwardLaplacian, SinglePass, functools.partial(Stein, 64)],
                         ids=["Autograd", "Forward", "ForwardLaplacian", "SinglePass", "Stein"])
def test_pinn_trains_on_gpu_and_reloads_on_cpu(engine, tmp_path):
    torch.manual_seed(0)
    model = PINN(Heat(dim=3, n_pde=256, n_initial=64, n_boundary=64), MLP([32, 32]), derivatives=engine(),
                 fused=False)
    before = fixed_loss(model, "cpu")
    path = fit_on_gpu(model, tmp_path, steps=60)
    after = fixed_loss(model, "cpu")
    assert after < 0.5 * before, (before, after)
    reloaded = lightning_pde.load(path, map_location="cpu")
    x = torch.rand(32, 4)
    assert next(reloaded.parameters()).device.type == "cpu"
    torch.testing.assert_close(reloaded(x), model.cpu()(x))


def test_compiled_single_pass_on_gpu_matches_eager(tmp_path):
    torch.manual_seed(0)
    eager = PINN(Poisson2D(n_pde=256, n_boundary=64), MLP([32, 32]), derivatives=SinglePass())
    compiled = PINN(Poisson2D(n_pde=256, n_boundary=64), MLP([32, 32]), derivatives=SinglePass(), compile=True)
    compiled.load_state_dict(eager.state_dict())
    generator = torch.Generator().manual_seed(2)
    points = {name: c.sample(128, generator, "uniform").to(DEVICE) for name, c in eager.conditions.items()}
    eager.to(DEVICE), compiled.to(DEVICE)
    for (name, a), b in zip(eager.condition_losses(points).items(), compiled.losses(points).values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
    fit_on_gpu(compiled, tmp_path, steps=10)


def test_smx_precision_plugin_trains_a_tt_network_on_gpu(tmp_path):
    from lpde_smx import SMXPrecision

    from lightning_pde.quant import SMXLinear

    torch.manual_seed(0)
    model = PINN(Poisson2D(n_pde=64, n_boundary=32),
                 TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None]), derivatives=Stein(samples=8),
                 fused=False)
    first = model.net.layers[1].cores[0].detach().clone()
    fit_on_gpu(model, tmp_path, steps=5, plugins=[SMXPrecision()])
    assert isinstance(model.net.layers[0], SMXLinear)
    assert not torch.equal(first, model.net.layers[1].cores[0].cpu())


def lpde(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PL_DISABLE_TIPS": "1"}
    return subprocess.run([sys.executable, "-m", "lightning_pde", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


QUIET_CLI = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
             f"--trainer.accelerator={ACCELERATOR}", "--trainer.devices=1"]
CLI_CASES = {
    "pinn/burgers": ["--model.init_args.problem.init_args.n_pde=256", "--data.init_args.steps_per_epoch=5",
                     "--trainer.max_steps=10"],
    "quant/poisson2d_tt_se_smx": ["--model.init_args.problem.init_args.n_pde=32", "--data.init_args.steps_per_epoch=3",
                                  "--trainer.max_steps=6", "--model.init_args.derivatives.init_args.samples=8",
                                  "--trainer.check_val_every_n_epoch=1"],
    "gptpinn/burgers_s2gpt": ["--model.max_neurons=2", "--model.neuron.max_steps=20",
                              "--model.neuron.second_order.iterations=0", "--model.pde_grid=[10,10]",
                              "--model.test_grid=[8,8]", "--model.neuron.net.init_args.hidden=[8]",
                              "--model.n_condition_points=16", "--model.first_params=null"],
    "pid/mixture_pid": ["--model.init_args.backbone.init_args.hidden=[16]", "--model.init_args.batch_size=32",
                        "--data.init_args.n_train=320", "--data.init_args.n_val=64", "--data.init_args.batch_size=32",
                        "--trainer.max_steps=6", "--trainer.val_check_interval=3", "--model.init_args.n_grid=8"],
}


@pytest.mark.parametrize("name", CLI_CASES)
def test_shipped_config_fits_on_gpu_and_reloads_on_cpu(name, tmp_path):
    result = lpde("fit", "--config", str(ROOT / "configs" / f"{name}.yaml"), *QUIET_CLI, *CLI_CASES[name],
                  f"--trainer.default_root_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted(tmp_path.rglob("*.ckpt"))
    assert checkpoints, "no checkpoint written"
    model = lightning_pde.load(checkpoints[-1], map_location="cpu")
    assert all(t.device.type == "cpu" for t in model.state_dict().values())
