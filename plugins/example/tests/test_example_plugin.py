"""The example plugin is found through its entry points and works like a built-in."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_pde import registry
from lightning_pde.cli import main
from lightning_pde.modules import PINN
from lightning_pde.problems.base import Problem

CONFIG = Path(__file__).parents[1] / "configs" / "advection.yaml"


def test_entry_points_resolve_to_the_plugin_classes():
    registry.reset()
    from lpde_example.advection import Advection
    from lpde_example.modified_mlp import ModifiedMLP
    from lpde_example.step_timer import StepTimer

    assert registry.get("problems", "Advection") is Advection
    assert registry.get("nets", "ModifiedMLP") is ModifiedMLP
    assert registry.get("callbacks", "StepTimer") is StepTimer
    entry = next(e for e in registry.entries("problems") if e.name == "Advection")
    assert entry.ok and entry.distribution == "lightning-pde-example" and entry.version == "0.1.0"


def test_lpde_plugins_lists_the_plugin_with_its_distribution():
    out = subprocess.run([sys.executable, "-m", "lightning_pde", "plugins"], capture_output=True, text=True,
                         check=True).stdout
    rows = [line for line in out.splitlines() if "lightning-pde-example 0.1.0" in line]
    assert {row.split()[1] for row in rows} == {"Advection", "ModifiedMLP", "StepTimer"}
    assert all(row.rstrip().endswith("ok") for row in rows)


def test_advection_residuals_vanish_on_the_exact_solution():
    from lpde_example.advection import Advection

    for c in (1.5, -0.7):
        problem = Advection(c=c)
        assert isinstance(problem, Problem)

        class Exact(torch.nn.Module):
            def forward(self, x):
                return problem.exact(x)

        module = PINN(problem, net=Exact(), normalize_inputs=False)
        gen = torch.Generator().manual_seed(0)
        for name, condition in module.conditions.items():
            x = condition.sample(64, gen, "uniform").requires_grad_(True)
            residual = condition.residual(module.fields(x))
            assert residual.abs().max() < 1e-5, name
        inflow = problem.conditions()["boundary"].sample(8, gen, "uniform")[:, 0]
        assert torch.allclose(inflow, torch.full_like(inflow, 0.0 if c > 0 else 2 * math.pi))


def test_bad_arguments_are_clear_errors():
    from lpde_example.advection import Advection
    from lpde_example.modified_mlp import ModifiedMLP
    from lpde_example.step_timer import StepTimer

    with pytest.raises(ValueError, match=r"Advection: c must be a finite number, got nan"):
        Advection(c=float("nan"))
    with pytest.raises(ValueError, match=r"ModifiedMLP: depth must be an integer >= 1, got 0"):
        ModifiedMLP(depth=0)
    with pytest.raises(ValueError, match=r"StepTimer: every_n_steps must be an integer >= 1, got -1"):
        StepTimer(every_n_steps=-1)


def test_modified_mlp_gates_hidden_layers_between_the_encoders():
    from lpde_example.modified_mlp import ModifiedMLP

    torch.manual_seed(0)
    net = ModifiedMLP(width=8, depth=2, in_features=2, out_features=1)
    x = torch.randn(5, 2)
    u, v = torch.tanh(net.encoders[0](x)), torch.tanh(net.encoders[1](x))
    h = torch.tanh(net.layers[0](x))
    z = torch.tanh(net.layers[1](h))
    assert torch.allclose(net(x), net.layers[2]((1 - z) * u + z * v))


def test_config_selects_plugin_classes_by_short_name_and_trains(tmp_path):
    """The shipped config, shortened, through `lpde fit`: the PINN learns the travelling wave, StepTimer logs."""
    args = ["fit", "--config", str(CONFIG), "--trainer.max_steps=600", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", f"--trainer.default_root_dir={tmp_path}",
            "--data.init_args.steps_per_epoch=200", "--model.init_args.problem.init_args.n_pde=300",
            "--model.init_args.optimizer.init_args.lr=0.005", "--trainer.logger=CSVLogger",
            f"--trainer.logger.save_dir={tmp_path}", "--trainer.callbacks+=ModelCheckpoint",
            f"--trainer.callbacks.dirpath={tmp_path}/ckpt", "--trainer.callbacks.save_last=true"]
    assert main(args) == 0
    import lightning_pde
    from lpde_example.modified_mlp import ModifiedMLP

    module = lightning_pde.load(tmp_path / "ckpt" / "last.ckpt")
    assert isinstance(module.net, ModifiedMLP)
    grid = module.problem.evaluation_grid()
    with torch.no_grad():
        u = module(grid.points.float()).double()
    error = float(torch.linalg.norm(u - grid.values) / torch.linalg.norm(grid.values))
    assert error < 0.1, error
    metrics = (next(tmp_path.glob("lightning_logs/version_*/metrics.csv"))).read_text()
    assert "train/steps_per_second" in metrics
