import math

import pytest
import torch

from lightning_pde.derivatives import Autograd
from lightning_pde.problems import Box, Burgers, Poisson2D


class Exact(torch.nn.Module):
    """A 'network' that is the problem's exact solution, to check residuals vanish."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def residuals(problem, net, n=64):
    g = torch.Generator().manual_seed(0)
    out = {}
    for name, cond in problem.conditions().items():
        x = cond.sample(n, g, "uniform")
        out[name] = cond.residual(Autograd().fields(net, x, problem.input_names, problem.output_names))
    return out


def test_poisson_exact_solution_has_zero_residual():
    problem = Poisson2D()
    for name, r in residuals(problem, Exact(problem.exact)).items():
        assert r.abs().max() < 1e-12, name


def test_burgers_initial_and_boundary_conditions_hold_for_a_field_satisfying_them():
    problem = Burgers(nu=0.1)
    # u = -sin(pi x) cos(t): satisfies the initial and boundary conditions but not the PDE.
    net = Exact(lambda x: (-torch.sin(math.pi * x[:, :1]) * torch.cos(x[:, 1:2])))
    r = residuals(problem, net)
    assert r["initial"].abs().max() < 1e-12
    assert r["boundary"].abs().max() < 1e-12
    assert r["pde"].abs().max() > 1e-2


def test_burgers_pde_residual_matches_hand_computed_formula():
    nu = 0.05
    problem = Burgers(nu=nu)
    x = torch.rand(32, 2, dtype=torch.float64)
    net = Exact(lambda p: torch.sin(p[:, :1]) * torch.exp(p[:, 1:2]))
    f = Autograd().fields(net, x, problem.input_names, problem.output_names)
    u = torch.sin(x[:, 0]) * torch.exp(x[:, 1])
    expected = u + u * torch.cos(x[:, 0]) * torch.exp(x[:, 1]) + nu * u
    assert torch.allclose(problem.conditions()["pde"].residual(f), expected, atol=1e-12)


def test_samplers_stay_on_their_sets():
    problem = Burgers()
    g = torch.Generator().manual_seed(1)
    conds = problem.conditions()
    for method in ("uniform", "sobol"):
        pde = conds["pde"].sample(256, g, method)
        assert pde.shape == (256, 2) and pde.dtype == torch.float64
        assert (pde[:, 0].abs() <= 1).all() and ((pde[:, 1] >= 0) & (pde[:, 1] <= 1)).all()
        assert (conds["initial"].sample(50, g, method)[:, 1] == 0).all()
        boundary = conds["boundary"].sample(51, g, method)
        assert len(boundary) == 51 and (boundary[:, 0].abs() == 1).all()
        assert {-1.0, 1.0} == set(boundary[:, 0].tolist())


def test_box_faces_split_by_area_and_grid_order():
    box = Box([0.0, 0.0], [2.0, 1.0])
    pts = box.sample_faces(30, [(0, "lower"), (1, "lower")], torch.Generator().manual_seed(0))
    # the x0 = 0 face has length 1, the x1 = 0 face length 2
    assert (pts[:, 0] == 0).sum() == 10 and (pts[:, 1] == 0).sum() == 20
    grid = box.grid((3, 2))
    assert grid.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]


def test_same_seed_same_points():
    cond = Poisson2D().conditions()["pde"]
    a = cond.sample(100, torch.Generator().manual_seed(3), "sobol")
    b = cond.sample(100, torch.Generator().manual_seed(3), "sobol")
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: Burgers(nu=-1), "nu"),
        (lambda: Burgers(nu=0), "nu"),
        (lambda: Burgers(nu=float("nan")), "nu"),
        (lambda: Burgers(nu="0.1"), "nu"),
        (lambda: Burgers(n_pde=0), "n_pde"),
        (lambda: Burgers(n_initial=2.5), "n_initial"),
        (lambda: Poisson2D(n_boundary=-3), "n_boundary"),
        (lambda: Box([0.0], [0.0]), "upper"),
    ],
)
def test_bad_arguments_name_the_argument(factory, argument):
    with pytest.raises(ValueError, match=argument):
        factory()


def test_burgers_message_is_for_people():
    with pytest.raises(ValueError, match=r"^Burgers: nu must be a finite number > 0, got -1$"):
        Burgers(nu=-1)


def test_problem_metadata_and_spec():
    problem = Burgers(nu=0.02)
    assert problem.input_names == ("x", "t") and problem.output_names == ("u",)
    assert problem.parameters == {"nu": 0.02}
    assert problem.init_args["nu"] == 0.02
    assert repr(problem).startswith("Burgers(nu=0.02")


def test_evaluation_grids():
    grid = Poisson2D().evaluation_grid()
    assert grid.points.shape == (101 * 101, 2) and grid.values.shape == (101 * 101, 1) and grid.shape == (101, 101)
    grid = Burgers().evaluation_grid()
    assert grid.shape == (256, 100) and grid.values.shape == (25600, 1)
    u = grid.values.reshape(256, 100)
    # t = 0 column is the initial condition
    assert torch.allclose(u[:, 0], -torch.sin(math.pi * grid.points.reshape(256, 100, 2)[:, 0, 0]), atol=1e-12)
