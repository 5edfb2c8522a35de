"""Conditions beyond whole-face Dirichlet data: observations paired with their points (PointData), unknown constants
of inverse problems, systems with several outputs through every derivative engine, and a user's own problem file
trained through the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import lightning_pde
from lightning_pde.data import CollocationDataModule
from lightning_pde.derivatives import Forward, ForwardLaplacian, SinglePass, Stein
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Condition, PointData, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.reference import read_table

ROOT = Path(__file__).resolve().parents[1]


class SineInverse(Problem):
    """u'' + k u = 0 on [0, 1] with k unknown (truth pi^2), from observations of u = sin(pi x)."""

    input_names = ("x",)
    grid_shape = (33,)
    unknowns = {"k": 1.0}

    def __init__(self, n_data: int = 40, n_pde: int = 64) -> None:
        self.n_data, self.n_pde = n_data, n_pde
        self.domain = Box([0.0], [1.0])

    def exact(self, x):
        return torch.sin(math.pi * x)

    def conditions(self):
        points = torch.linspace(0, 1, self.n_data, dtype=torch.float64)[:, None]
        return {"pde": Condition("pde", lambda n, g, m: self.domain.sample(n, g, m),
                                 lambda f: f["u_xx"] + f.unknown("k") * f["u"], self.n_pde),
                "data": PointData(points, self.exact(points))}


class System3(Problem):
    """A 3-output system with Navier-Stokes-like residuals (no exact solution needed: engines are compared)."""

    input_names = ("x", "y")
    output_names = ("u", "v", "p")

    def __init__(self) -> None:
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def conditions(self):
        def momentum(f):
            return torch.stack([f["u"] * f["u_x"] + f["v"] * f["u_y"] + f["p_x"] - 0.1 * f.laplacian("u"),
                                f["u"] * f["v_x"] + f["v"] * f["v_y"] + f["p_y"] - 0.1 * f.laplacian("v"),
                                f["u_x"] + f["v_y"]], dim=1)

        return {"pde": Condition("pde", lambda n, g, m: self.domain.sample(n, g, m), momentum, 32),
                "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_face(n, 1, "upper", g, m),
                                      lambda f: f.u[:, :2] - torch.stack([torch.ones_like(f["x"]), 0 * f["x"]], 1),
                                      16)}


# -- PointData -------------------------------------------------------------------------------------------------------
def test_point_data_rows_keep_points_and_values_together_through_subsets_and_shards():
    points = torch.rand(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    values = torch.stack([points[:, 0] + 2 * points[:, 1], points[:, 0] * points[:, 1]], 1)
    data = PointData(points, values, outputs=("u", "v"), n_points=20)
    assert data.kind == "data" and data.n_values == 2 and data.n_points == 20
    rows = data.sample(20, torch.Generator().manual_seed(3), "sobol")
    assert rows.shape == (20, 4)
    x, v = data.split(rows)
    assert torch.equal(v[:, 0], x[:, 0] + 2 * x[:, 1]) and torch.equal(v[:, 1], x[:, 0] * x[:, 1])
    assert len({tuple(r) for r in x.tolist()}) == 20  # a subset without repeats
    assert torch.equal(data.sample(50, None, "uniform"), torch.cat([points, values], 1))  # all of them, in order
    for rank in (0, 1):  # the data module's sharding is by rows
        shard_x, shard_v = data.split(rows[rank::2])
        assert torch.equal(shard_v[:, 0], shard_x[:, 0] + 2 * shard_x[:, 1])


@pytest.mark.parametrize("kwargs, message", [
    ({"points": torch.zeros(5, 2), "values": torch.zeros(4)}, "values must have shape"),
    ({"points": torch.zeros(5, 2), "values": torch.zeros(5, 2)}, "values must have shape"),
    ({"points": torch.zeros(5), "values": torch.zeros(5)}, "points must have shape"),
    ({"points": torch.zeros(5, 2), "values": torch.full((5,), float("nan"))}, "finite"),
    ({"points": torch.zeros(5, 2), "values": torch.zeros(5), "n_points": 6}, "n_points"),
])
def test_point_data_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PointData(**kwargs)


def test_a_data_condition_asking_for_an_unknown_output_fails_at_construction():
    class Bad(SineInverse):
        def conditions(self):
            return {**super().conditions(), "data": PointData(torch.zeros(3, 1), torch.zeros(3), outputs=("w",))}

    with pytest.raises(ValueError, match="condition 'data' .*'w'"):
        PINN(Bad(), net=MLP(hidden=[8]))


# -- unknown constants ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_an_unknown_constant_is_trained_with_the_network(fused):
    torch.manual_seed(0)
    module = PINN(SineInverse(), net=MLP(hidden=[16, 16]), fused=fused).double()
    assert "unknowns.k" in dict(module.named_parameters())  # the optimizer sees it
    data = CollocationDataModule(problem=module.problem, sampling="uniform")
    data.setup("fit")
    points = {k: v.double() for k, v in data.sample(0).items()}
    optimizer = torch.optim.LBFGS(module.parameters(), lr=1, max_iter=400, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        optimizer.zero_grad()
        loss = sum(module.condition_losses(points).values())
        loss.backward()
        return loss

    for _ in range(3):
        optimizer.step(closure)
    assert abs(module.unknowns["k"].item() - math.pi**2) / math.pi**2 < 1e-2


def test_unknowns_are_logged_and_reload_from_the_checkpoint(tmp_path):
    import pytorch_lightning as pl

    module = PINN(SineInverse(), net=MLP(hidden=[8]), optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    trainer = pl.Trainer(max_steps=20, logger=pl.loggers.CSVLogger(tmp_path), enable_progress_bar=False,
                         enable_model_summary=False, inference_mode=False, log_every_n_steps=1,
                         default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(module, CollocationDataModule(steps_per_epoch=20))
    estimate = float(module.unknowns["k"])
    assert estimate != 1.0 and "train/unknown_k" in trainer.logged_metrics
    metrics = (Path(trainer.logger.log_dir) / "metrics.csv").read_text()
    assert "train/unknown_k" in metrics.splitlines()[0]
    trainer.save_checkpoint(tmp_path / "inverse.ckpt")
    reloaded = lightning_pde.load(tmp_path / "inverse.ckpt")
    assert float(reloaded.unknowns["k"]) == estimate


@pytest.mark.parametrize("unknowns, message", [({"k": float("nan")}, "finite"), ({"1k": 1.0}, "identifiers"),
                                               ({"k": "one"}, "finite"), (["k"], "map names")])
def test_bad_unknowns_are_clear_errors(unknowns, message):
    problem = SineInverse()
    problem.unknowns = unknowns
    with pytest.raises(ValueError, match=message):
        PINN(problem, net=MLP(hidden=[4]))


def test_an_unknown_a_residual_asks_for_but_the_problem_does_not_declare_fails_at_construction():
    problem = SineInverse()
    problem.unknowns = {}
    with pytest.raises(ValueError, match="unknown constant 'k'"):
        PINN(problem, net=MLP(hidden=[4]))


# -- systems ----------------------------------------------------------------------------------------------------------
ENGINES = {"Forward": Forward, "ForwardLaplacian": ForwardLaplacian, "SinglePass": SinglePass}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fused", [True, False])
def test_every_exact_engine_agrees_with_reverse_mode_on_a_three_output_system(engine, fused):
    torch.manual_seed(0)
    reference = PINN(System3(), net=MLP(hidden=[16, 16]), fused=fused).double()
    other = PINN(System3(), net=MLP(hidden=[16, 16]), derivatives=ENGINES[engine](), fused=fused).double()
    other.load_state_dict(reference.state_dict())
    points = {"pde": System3().domain.sample(32, torch.Generator().manual_seed(1)),
              "boundary": System3().domain.sample_face(16, 1, "upper", torch.Generator().manual_seed(2))}
    expected, got = reference.condition_losses(points), other.condition_losses(points)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-9, atol=1e-12)
    # and the fields themselves, output by output
    x = points["pde"]
    f_ref, f_other = reference.fields(x), other.fields(x)
    for key in ("u", "v", "p", "u_x", "v_y", "p_x", "p_y"):
        torch.testing.assert_close(f_other[key], f_ref[key], rtol=1e-9, atol=1e-12)
    for output in ("u", "v", "p"):
        torch.testing.assert_close(f_other.laplacian(output), f_ref.laplacian(output), rtol=1e-9, atol=1e-10)


def test_stein_estimates_every_output_of_a_system():
    """Stein's estimator is unbiased for the Gaussian-smoothed network: with many samples and a small sigma its
    derivatives of each of three outputs match reverse mode within the statistical error."""
    torch.manual_seed(0)
    reference = PINN(System3(), net=MLP(hidden=[16, 16])).double()
    stein = PINN(System3(), net=MLP(hidden=[16, 16]), derivatives=Stein(samples=20000, sigma=0.02)).double()
    stein.load_state_dict(reference.state_dict())
    x = System3().domain.sample(8, torch.Generator().manual_seed(1))
    f_ref, f_stein = reference.fields(x), stein.fields(x)
    for key in ("u_x", "v_y", "p_x"):
        scale = f_ref[key].abs().max()
        assert (f_stein[key] - f_ref[key]).abs().max() < 0.05 * scale + 1e-3, key
    for output in ("u", "v", "p"):
        scale = f_ref.laplacian(output).abs().max()
        assert (f_stein.laplacian(output) - f_ref.laplacian(output)).abs().max() < 0.2 * scale + 0.05, output


def test_a_system_logs_its_joint_and_per_output_errors(tmp_path):
    import pytorch_lightning as pl

    class Exact3(System3):
        grid_shape = (5, 5)

        def exact(self, x):
            return torch.stack([x[:, 0], x[:, 1], 0 * x[:, 0] + 1], 1)

    module = PINN(Exact3(), net=MLP(hidden=[4]))
    trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         inference_mode=False, default_root_dir=tmp_path, enable_checkpointing=False)
    (result,) = trainer.validate(module, CollocationDataModule(), verbose=False)
    assert {"val/rel_l2", "val/rel_l2_u", "val/rel_l2_v", "val/rel_l2_p"} <= set(result)
    grid = Exact3().evaluation_grid()
    with torch.no_grad():
        prediction = module(grid.points.float()).double()
    joint = (prediction - grid.values).norm() / grid.values.norm()
    assert result["val/rel_l2"] == pytest.approx(float(joint), rel=1e-5)
    per_u = (prediction[:, 0] - grid.values[:, 0]).norm() / grid.values[:, 0].norm()
    assert result["val/rel_l2_u"] == pytest.approx(float(per_u), rel=1e-5)


# -- read_table --------------------------------------------------------------------------------------------------------
def test_read_table_reads_comsol_tables_and_refuses_bad_files(tmp_path):
    good = tmp_path / "good.dat"
    good.write_text("% Model: x.mph\n% x  y  u\n0 0 1.5\n\n1 0.5 -2e-3\n")
    table = read_table(good)
    assert table.dtype == torch.float64 and table.tolist() == [[0, 0, 1.5], [1, 0.5, -2e-3]]
    assert read_table(good, columns=3).shape == (2, 3)
    cases = {"missing.dat": None, "empty.dat": "% only a header\n", "ragged.dat": "1 2 3\n4 5\n",
             "words.dat": "1 2 three\n", "nan.dat": "1 2 nan\n"}
    messages = {"missing.dat": "no such file", "empty.dat": "no numbers", "ragged.dat": "not a table",
                "words.dat": "not a table", "nan.dat": "nan or inf"}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=messages[name]):
            read_table(tmp_path / name)
    with pytest.raises(ValueError, match="has 3 columns, expected 5"):
        read_table(good, columns=5)


# -- a user's own problem file, through the CLI ----------------------------------------------------------------------
USER_PROBLEM = '''
import math
import torch
from lightning_pde.problems import Condition, PointData, Problem
from lightning_pde.problems.domain import Box


class Decay(Problem):
    """u' = -k u on [0, 1] with k unknown (truth 2), from observations of u = exp(-2 t)."""

    input_names = ("t",)
    grid_shape = (21,)
    unknowns = {"k": 0.5}

    def __init__(self, n_pde: int = 32):
        self.n_pde = n_pde
        self.domain = Box([0.0], [1.0])

    def exact(self, t):
        return torch.exp(-2 * t)

    def conditions(self):
        t = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
        return {"pde": Condition("pde", lambda n, g, m: self.domain.sample(n, g, m),
                                 lambda f: f["u_t"] + f.unknown("k") * f["u"], self.n_pde),
                "data": PointData(t, self.exact(t))}
'''


def test_a_problem_in_the_users_own_file_trains_through_the_cli_and_reloads(tmp_path):
    (tmp_path / "my_problem.py").write_text(textwrap.dedent(USER_PROBLEM))
    (tmp_path / "decay.yaml").write_text(textwrap.dedent("""\
        model:
          class_path: lightning_pde.modules.PINN
          init_args:
            problem: {class_path: my_problem.Decay}
            net: {class_path: lightning_pde.nn.MLP, init_args: {hidden: [16]}}
            optimizer: {class_path: torch.optim.Adam, init_args: {lr: 0.02}}
        data:
          class_path: lightning_pde.data.CollocationDataModule
          init_args: {steps_per_epoch: 50}
        trainer:
          max_steps: 300
          enable_progress_bar: false
          log_every_n_steps: 10
        """))
    lpde = Path(sys.executable).with_name("lpde")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    result = subprocess.run([str(lpde), "fit", "--config", "decay.yaml", f"--trainer.default_root_dir={tmp_path}/runs"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (checkpoint,) = (tmp_path / "runs").rglob("last.ckpt")
    script = ("import sys, lightning_pde; sys.path.append('.'); m = lightning_pde.load(sys.argv[1]); "
              "print(m.problem.name, float(m.unknowns['k']))")
    loaded = subprocess.run([sys.executable, "-c", script, str(checkpoint)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    name, k = loaded.stdout.split()
    assert name == "Decay" and abs(float(k) - 2.0) < 0.5  # 300 Adam steps: on its way from 0.5 to 2


# -- Burgers' viscosity as an unknown ----------------------------------------------------------------------------------
def test_burgers_inverse_observes_the_cole_hopf_solution_and_trains_nu():
    from lightning_pde.problems.burgers_inverse import BurgersInverse
    from lightning_pde.reference import cole_hopf_burgers

    problem = BurgersInverse(n_data=50, n_pde=64, n_initial=16, n_boundary=16)
    data = problem.conditions()["data"]
    assert data.kind == "data" and len(data.points) == 50 and problem.unknowns == {"log_nu": math.log(0.05)}
    for (x, t), (u,) in zip(data.points[:5].tolist(), data.values[:5].tolist()):
        assert u == pytest.approx(float(cole_hopf_burgers([x], [t], problem.nu)[0, 0]), abs=1e-12)
    noisy = BurgersInverse(n_data=50, noise=0.1).conditions()["data"]
    assert torch.equal(noisy.points, data.points) and 0.05 < float((noisy.values - data.values).std()) < 0.15
    module = PINN(problem, net=MLP(hidden=[8]), hard_constraints=True)
    assert set(module.conditions) == {"pde", "data"} and "unknowns.log_nu" in dict(module.named_parameters())
    assert BurgersInverse.estimated_nu(module) == pytest.approx(0.05, rel=1e-6)
    with pytest.raises(ValueError, match="nu_initial"):
        BurgersInverse(nu_initial=-1.0)
