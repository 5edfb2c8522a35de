"""The PINNacle tasks (configs/pinnacle, benchmarks/pinnacle.py): their problems' equations and conditions, checked
on exact or analytic fields, the vendored reference files, and clear errors for bad arguments."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from lightning_pde.derivatives import Autograd
from lightning_pde.problems.lid_driven_cavity import PINNACLE_DATA, LidDrivenCavity
from lightning_pde.problems.poisson_holes import HOLE_CENTERS, HOLE_RADIUS, PoissonHoles
from lightning_pde.problems.poisson_inverse import PoissonInverse
from lightning_pde.problems.wave import Wave1D

MD5 = {"burgers1d.dat": "4577f746fb290b982e87c87fcd59e93f", "poisson1_cg_data.dat": "64a69f521f5578e1cbb4f9cd527175b2",
       "lid_driven_a4.dat": "cf52d83d8751d38a1b0e520acc200773"}


def fields_of(problem, field, points, values=None):
    """Reverse-mode fields of the function `field` (N, n_inputs) -> (N, n_outputs) at `points`, float64."""
    fields = Autograd().fields(field, points.double(), problem.input_names, problem.output_names)
    fields.domain, fields.values = problem.domain, values
    return fields


def residuals(problem, field, n=64, seed=0):
    """Every condition's residual of `field` at `n` of its own points: {name: (n,) or (n, k)}."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, cond in problem.conditions().items():
        points, values = cond.split(cond.sample(min(n, cond.n_points), generator, "uniform"))
        out[name] = cond.residual(fields_of(problem, field, points, values))
    return out


@pytest.mark.parametrize("name", sorted(MD5))
def test_vendored_reference_files_match_pinnacle(name):
    path = PINNACLE_DATA / name
    assert hashlib.md5(path.read_bytes()).hexdigest() == MD5[name]
    assert (PINNACLE_DATA / "LICENSE").read_text().startswith("MIT License")


def test_wave_exact_solution_satisfies_every_condition_and_the_hard_constraint():
    problem = Wave1D()
    for name, residual in residuals(problem, problem.exact).items():
        assert residual.abs().max() < 1e-9, name
    x = problem.domain.sample(256, torch.Generator().manual_seed(1))
    x[:64, 1] = 0.0
    x[64:96, 0] = 0.0
    x[96:128, 0] = 1.0
    hard = problem.hard_constraint(x, torch.randn(256, 1, generator=torch.Generator().manual_seed(2),
                                                  dtype=torch.float64))
    assert torch.allclose(hard[:128], problem.exact(x)[:128], atol=1e-12)
    # a wrong wave speed shows: the residual of a field with speed 1 is not zero
    slow = lambda x: torch.sin(math.pi * x[:, :1]) * torch.cos(math.pi * x[:, 1:2])  # noqa: E731
    assert residuals(problem, slow)["pde"].abs().max() > 1.0


def test_wave_conditions_sit_on_their_boundary_parts():
    conditions, generator = Wave1D().conditions(), torch.Generator().manual_seed(0)
    assert (conditions["initial"].sample(50, generator, "sobol")[:, 1] == 0).all()
    sides = conditions["boundary"].sample(50, generator, "uniform")[:, 0]
    assert ((sides == 0) | (sides == 1)).all() and (sides == 0).sum() == 25


def taylor_green(x):
    """u = sin x cos y, v = -cos x sin y, p = (cos 2x + cos 2y) / 4: divergence free, convection balanced by the
    pressure, so the momentum residuals are -nu Laplace(u, v) = 2 nu (u, v)."""
    xs, ys = x[:, :1], x[:, 1:2]
    return torch.cat([torch.sin(xs) * torch.cos(ys), -torch.cos(xs) * torch.sin(ys),
                      (torch.cos(2 * xs) + torch.cos(2 * ys)) / 4], dim=1)


def test_navier_stokes_residuals_of_an_analytic_field():
    problem = LidDrivenCavity(nu=0.05)
    x = problem.domain.sample(100, torch.Generator().manual_seed(0))
    residual = problem.conditions()["pde"].residual(fields_of(problem, taylor_green, x))
    field = taylor_green(x)
    assert residual.shape == (100, 3)
    assert torch.allclose(residual[:, :2], 2 * 0.05 * field[:, :2], atol=1e-12)
    assert residual[:, 2].abs().max() < 1e-12


def test_lid_driven_cavity_conditions_and_hard_constraint():
    problem = LidDrivenCavity()
    conditions, generator = problem.conditions(), torch.Generator().manual_seed(0)
    lid = conditions["lid"].sample(40, generator, "uniform")
    walls = conditions["walls"].sample(90, generator, "uniform")
    assert (lid[:, 1] == 1).all()
    on_wall = (walls[:, 0] == 0) | (walls[:, 0] == 1) | (walls[:, 1] == 0)
    assert on_wall.all() and (walls[:, 1] < 1).all()
    assert (conditions["pressure"].sample(4, generator, "uniform") == 0).all()
    n = torch.randn(130, 3, generator=generator, dtype=torch.float64)
    hard = problem.hard_constraint(torch.cat([lid, walls]), n)
    assert torch.allclose(hard[:40, 0], 4 * lid[:, 0] * (1 - lid[:, 0])) and (hard[:, 1].abs() < 1e-15).all()
    assert (hard[40:, 0].abs() < 1e-15).all() and torch.equal(hard[:, 2], n[:, 2])


def test_lid_driven_cavity_reference_from_the_file():
    grid = LidDrivenCavity().evaluation_grid()
    assert grid.points.shape == (10201, 2) and grid.values.shape == (10201, 3) and grid.shape == ()
    corner = (grid.points == 0).all(dim=1)
    assert corner.sum() == 1 and (grid.values[corner] == 0).all()  # p(0, 0) = 0, as the pressure condition asks
    lid = grid.points[:, 1] == 1
    # COMSOL's nodal values on the lid are within 3e-4 of the boundary data
    assert torch.allclose(grid.values[lid, 0], 4 * grid.points[lid, 0] * (1 - grid.points[lid, 0]), atol=1e-3)
    with pytest.raises(NotImplementedError, match="nu = 0.01 and lid = 4 only"):
        LidDrivenCavity(nu=0.02).evaluation_grid()


def test_poisson_inverse_exact_pair_solves_the_equation():
    problem = PoissonInverse()
    for name, residual in residuals(problem, problem.exact).items():
        if name == "data":  # the observations carry the seeded noise, standard deviation 0.1
            assert 0.07 < residual.std() < 0.13
        else:
            assert residual.abs().max() < 1e-9, name
    data = problem.conditions()["data"]
    assert data.kind == "data" and data.n_points == 2500 and data.outputs == ("u",)
    noiseless = PoissonInverse(noise=0.0)
    assert torch.allclose(noiseless.observations, problem.exact(noiseless.observation_points)[:, :1])
    assert torch.equal(PoissonInverse(seed=3).observations, PoissonInverse(seed=3).observations)
    x = problem.domain.sample_faces(64, [(0, "lower"), (0, "upper"), (1, "lower"), (1, "upper")],
                                    torch.Generator().manual_seed(0))
    hard = problem.hard_constraint(x, torch.randn(64, 2, generator=torch.Generator().manual_seed(1),
                                                  dtype=torch.float64))
    assert torch.allclose(hard[:, 1], problem.exact(x)[:, 1], atol=1e-14)
    # the lift is built from the boundary values alone: with n = 0 it is not the exact a inside
    inside = problem.domain.sample(256, torch.Generator().manual_seed(2))
    lift = problem.hard_constraint(inside, torch.zeros(256, 2, dtype=torch.float64))[:, 1]
    assert (lift - problem.exact(inside)[:, 1]).abs().max() > 1e-2


def test_poisson_holes_domain_conditions_and_reference():
    problem = PoissonHoles()
    conditions, generator = problem.conditions(), torch.Generator().manual_seed(0)
    holes = conditions["holes"].sample(200, generator, "uniform")
    distance = torch.stack([(holes - torch.tensor(c)).norm(dim=1) for c in HOLE_CENTERS]).amin(dim=0)
    assert torch.allclose(distance, torch.full_like(distance, HOLE_RADIUS), atol=1e-9)
    outer = conditions["outer"].sample(200, generator, "uniform")
    assert torch.allclose(outer.abs().amax(dim=1), torch.full((200,), 0.5, dtype=torch.float64))
    interior = conditions["pde"].sample(500, generator, "uniform")
    assert (torch.stack([(interior - torch.tensor(c)).norm(dim=1) for c in HOLE_CENTERS]).amin(dim=0)
            > HOLE_RADIUS - 1e-12).all()
    grid = problem.evaluation_grid()
    assert grid.points.shape == (1246, 2) and grid.values.shape == (1246, 1)
    assert bool(problem.domain.contains(grid.points).all())
    on_square = grid.points.abs().amax(dim=1) == 0.5
    assert torch.allclose(grid.values[on_square], torch.ones(1, dtype=torch.float64))


def test_poisson_holes_residual_is_written_in_the_holes_length_unit():
    # r^2 Laplace(u): in the square's unit the residual's scale (1 / r^2 per second derivative) traps training on
    # the u = 1/2 plateau (configs/pinnacle/poisson2d_c.yaml)
    residual = PoissonHoles().conditions()["pde"].residual
    second = torch.tensor([2.0, -3.0], dtype=torch.float64)
    assert torch.allclose(residual({"u_xx": second, "u_yy": 2 * second}), HOLE_RADIUS**2 * 3 * second)


@pytest.mark.parametrize("build, message", [
    (lambda: Wave1D(n_pde=0), "Wave1D: n_pde must be an integer >= 1, got 0"),
    (lambda: LidDrivenCavity(nu=-1.0), "LidDrivenCavity: nu must be a finite number > 0, got -1.0"),
    (lambda: LidDrivenCavity(n_walls=2.5), "LidDrivenCavity: n_walls must be an integer >= 1"),
    (lambda: PoissonInverse(noise=-0.1), "PoissonInverse: noise must be a finite number >= 0"),
    (lambda: PoissonInverse(grid=1), "PoissonInverse: grid must be an integer >= 2, got 1"),
    (lambda: PoissonHoles(n_holes=-5), "PoissonHoles: n_holes must be an integer >= 1, got -5"),
])
def test_bad_arguments_are_clear_errors(build, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def load_benchmark():
    """benchmarks/pinnacle.py as a module (benchmarks are scripts that import their neighbours by name)."""
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(root))
    try:
        spec = importlib.util.spec_from_file_location("pinnacle_benchmark", root / "pinnacle.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(root))
    return module


def test_burgers_file_is_1_33e_2_from_cole_hopf_as_its_readme_says():
    from lightning_pde.reference import cole_hopf_burgers

    benchmark = load_benchmark()
    points, values = benchmark.burgers_file_points()
    assert points.shape == (1111, 2) and values.shape == (1111, 1)
    assert torch.equal(points[:11, 1], torch.linspace(0, 1, 11, dtype=torch.float64))  # t runs fastest
    # (x, t) grid, 'ij' order: the same layout as the file's points
    exact = torch.as_tensor(cole_hopf_burgers(points[::11, 0].numpy(), points[:11, 1].numpy(), 0.01 / math.pi))
    assert torch.allclose(values[points[:, 1] == 0, 0], -torch.sin(math.pi * points[points[:, 1] == 0, 0]),
                          atol=1e-12)
    assert benchmark.rel_l2(exact.reshape(-1, 1), values) == pytest.approx(1.33e-2, abs=5e-4)


@pytest.mark.slow
def test_benchmark_smoke_run_scores_a_checkpoint(tmp_path):
    """The benchmark end to end on a tiny PInv run: fit, score u and a, write the JSON."""
    import json

    benchmark = load_benchmark()
    output = tmp_path / "pinnacle.json"
    benchmark.main(["--only", "poisson_inv", "--max-steps", "2", "--points", "16", "--output", str(output)])
    (result,) = json.loads(output.read_text())["results"]
    assert result["task"] == "poisson_inv" and result["steps"] == 2
    assert set(result["rel_l2_per_output"]) == {"u", "a"} and 0 < result["rel_l2"] < 10
