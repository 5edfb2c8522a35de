"""Klein-Gordon, Allen-Cahn, Helmholtz, Heat and HJB: exact solutions, samplers, arguments, reference solvers."""

import math

import numpy as np
import pytest
import torch

from lightning_pde.derivatives import Autograd
from lightning_pde.problems.allen_cahn import AllenCahn
from lightning_pde.problems.domain import Ball, BallTime
from lightning_pde.problems.heat import Heat
from lightning_pde.problems.helmholtz import Helmholtz, helmholtz_source
from lightning_pde.problems.hjb import HJB
from lightning_pde.problems.klein_gordon import KleinGordon
from lightning_pde.reference.klein_gordon import klein_gordon_method_of_lines, klein_gordon_reference
from lightning_pde.spec import from_spec, to_spec


from test_problems import Exact  # noqa: E402 (the tests folder is on sys.path under pytest)


def fields(problem, net, x):
    return Autograd().fields(net, x, problem.input_names, problem.output_names)


def residuals(problem, net, n=64, method="uniform"):
    g = torch.Generator().manual_seed(0)
    return {name: cond.residual(fields(problem, net, cond.sample(n, g, method)))
            for name, cond in problem.conditions().items()}


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("LPDE_CACHE_DIR", str(directory))
    return directory


# -- exact solutions ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "problem",
    [KleinGordon(), Helmholtz(), Helmholtz(a1=2, a2=3, k=4.5), Helmholtz(a1=0.5, a2=-1.5, k=0), Heat(dim=1),
     Heat(dim=3), HJB(dim=3), HJB(dim=20)],
    ids=repr,
)
def test_exact_solution_has_zero_residual_on_every_condition(problem):
    for method in ("uniform", "sobol"):
        for name, r in residuals(problem, Exact(problem.exact), method=method).items():
            assert r.dtype == torch.float64
            assert r.abs().max() < 1e-10, (name, float(r.abs().max()))


def test_helmholtz_source_in_closed_form_matches_autograd():
    problem = Helmholtz(a1=1.5, a2=2.5, k=3.0)
    x = problem.domain.sample(200, torch.Generator().manual_seed(4))
    f = fields(problem, Exact(problem.exact), x)
    q = f["u_xx"] + f["u_yy"] + 9.0 * f["u"]
    assert torch.allclose(helmholtz_source(x[:, 0], x[:, 1], 1.5, 2.5, 3.0), q, rtol=0, atol=1e-10)
    assert q.abs().max() > 1  # the check is not vacuous


def test_hjb_right_hand_side_is_minus_two_at_dim_20_and_keeps_the_solution_exact_elsewhere():
    assert HJB(dim=20).source == -2.0
    assert HJB(dim=3).source == pytest.approx(-1.15)
    # the benchmark's solution with the literal -2 fails at dim = 3 by exactly 0.05 * (20 - 3)
    problem = HJB(dim=3)
    x = problem.domain.sample(16, torch.Generator().manual_seed(0))
    r = problem.conditions()["pde"].residual(fields(problem, Exact(problem.exact), x))
    assert torch.allclose(r + problem.source + 2, torch.full_like(r, 0.05 * 17), atol=1e-12)


def test_klein_gordon_exact_only_at_its_parameters():
    x = torch.rand(8, 2, dtype=torch.float64)
    assert KleinGordon().exact(x) is not None
    assert KleinGordon(alpha=-2, beta=0.5, gamma=0.5).exact(x) is None
    # away from (-1, 0, 1), x cos t satisfies the data but not the PDE
    r = residuals(KleinGordon(alpha=-2, beta=0.5, gamma=0.5), Exact(lambda p: p[:, :1] * torch.cos(p[:, 1:2])))
    assert all(r[name].abs().max() < 1e-12 for name in ("initial", "initial_velocity", "boundary"))
    assert r["pde"].abs().max() > 1e-2


def test_klein_gordon_pde_residual_matches_hand_computed_formula():
    problem = KleinGordon(alpha=-1.5, beta=0.3, gamma=0.7)
    x = problem.domain.sample(32, torch.Generator().manual_seed(2))
    f = fields(problem, Exact(lambda p: torch.sin(p[:, :1]) * torch.exp(p[:, 1:2] / 5)), x)
    xs, t = x[:, 0], x[:, 1]
    u = torch.sin(xs) * torch.exp(t / 5)
    expected = u / 25 + 1.5 * u + 0.3 * u + 0.7 * u**2 + xs * torch.cos(t) - xs**2 * torch.cos(t) ** 2
    assert torch.allclose(problem.conditions()["pde"].residual(f), expected, atol=1e-12)


# -- Allen-Cahn conditions ------------------------------------------------------------------------------------------
def test_allen_cahn_periodic_condition_compares_both_sides():
    problem = AllenCahn()
    periodic = Exact(lambda p: torch.cos(math.pi * p[:, :1]) * torch.exp(-p[:, 1:2]) + torch.sin(math.pi * p[:, :1]))
    r = residuals(problem, periodic)
    assert r["periodic"].shape == (64, 2) and r["periodic"].abs().max() < 1e-12
    # value periodic but slope not: only the u_x column is nonzero
    initial = Exact(lambda p: p[:, :1] ** 2 * torch.cos(math.pi * p[:, :1]) + p[:, 1:2])
    r = residuals(problem, initial)
    assert r["initial"].abs().max() < 1e-12
    assert r["periodic"][:, 0].abs().max() < 1e-12
    assert torch.allclose(r["periodic"][:, 1], torch.full((64,), 4.0, dtype=torch.float64), atol=1e-12)
    assert AllenCahn.periodic_inputs == {"x": 2.0}


def test_allen_cahn_pde_residual_matches_hand_computed_formula():
    problem = AllenCahn(lam=0.01, eps=3.0)
    x = problem.domain.sample(32, torch.Generator().manual_seed(2))
    f = fields(problem, Exact(lambda p: torch.sin(p[:, :1]) * torch.exp(p[:, 1:2])), x)
    u = torch.sin(x[:, 0]) * torch.exp(x[:, 1])
    expected = u + 0.01 * u + 3.0 * (u**3 - u)
    assert torch.allclose(problem.conditions()["pde"].residual(f), expected, atol=1e-12)


def test_allen_cahn_reference_grid(isolated_cache):
    pytest.importorskip("lightning_pde.reference.allen_cahn")
    grid = AllenCahn().evaluation_grid()
    assert grid.shape == (201, 101) and grid.points.shape == (201 * 101, 2) and grid.values.shape == (201 * 101, 1)
    x = grid.points.reshape(201, 101, 2)[:, 0, 0]
    u = grid.values.reshape(201, 101)
    assert torch.allclose(u[:, 0], x**2 * torch.cos(math.pi * x), atol=1e-8)
    assert torch.allclose(u[0], u[-1], atol=1e-6)  # periodic in x


# -- hard constraints -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("problem", [KleinGordon(alpha=-2, beta=0.5, gamma=0.5),
                                     KleinGordon(alpha=-1.3, beta=0.9, gamma=0.2, corner_singularity=True),
                                     Helmholtz(a1=2)], ids=repr)
def test_hard_constraint_satisfies_its_conditions_for_any_network(problem):
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    r = residuals(problem, Exact(lambda p: problem.hard_constraint(p, mlp(p))))
    for name in problem.hard_conditions:
        assert r[name].abs().max() < 1e-12, name
    assert r["pde"].abs().max() > 1e-3


# -- samplers -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["uniform", "sobol"])
@pytest.mark.parametrize("dim", [1, 2, 5, 100])
def test_ball_samples_uniformly_in_the_ball_and_on_the_sphere(dim, method):
    g = torch.Generator().manual_seed(dim)
    ball = Ball(dim)
    n = 8192
    inside = ball.sample(n, g, method)
    radius = torch.linalg.vector_norm(inside, dim=1)
    assert inside.shape == (n, dim) and inside.dtype == torch.float64 and (radius <= 1).all()
    # uniform in volume: half the points lie within 0.5^(1/dim); std of the fraction is 0.0055 for n = 8192
    assert abs(float((radius < 0.5 ** (1 / dim)).double().mean()) - 0.5) < 0.025
    assert inside.mean(dim=0).abs().max() < 0.05
    sphere = ball.sample_sphere(n, g, method)
    assert ((torch.linalg.vector_norm(sphere, dim=1) - 1).abs() < 1e-12).all()
    # uniform on the sphere: mean zero, E[x_i^2] = 1/dim
    assert sphere.mean(dim=0).abs().max() < 0.05
    assert (sphere.square().mean(dim=0) - 1 / dim).abs().max() < 0.05 / math.sqrt(dim) + 0.01 / dim


def test_ball_radius_and_bounding_box():
    ball = Ball(3, radius=2.5)
    points = ball.sample(1000, torch.Generator().manual_seed(0))
    assert (torch.linalg.vector_norm(points, dim=1) <= 2.5).all()
    assert torch.allclose(torch.linalg.vector_norm(ball.sample_sphere(10), dim=1), torch.full((10,), 2.5,
                                                                                                dtype=torch.float64))
    assert ball.lower.tolist() == [-2.5] * 3 and ball.upper.tolist() == [2.5] * 3 and ball.dim == 3


@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_heat_samplers_stay_in_their_sets(method):
    problem = Heat(dim=4)
    g = torch.Generator().manual_seed(1)
    conds = problem.conditions()
    pde = conds["pde"].sample(4096, g, method)
    assert pde.shape == (4096, 5) and pde.dtype == torch.float64
    assert (torch.linalg.vector_norm(pde[:, :4], dim=1) <= 1).all()
    assert ((pde[:, 4] >= 0) & (pde[:, 4] <= 1)).all() and abs(float(pde[:, 4].mean()) - 0.5) < 0.03
    assert abs(float((torch.linalg.vector_norm(pde[:, :4], dim=1) < 0.5**0.25).double().mean()) - 0.5) < 0.03
    initial = conds["initial"].sample(100, g, method)
    assert (initial[:, 4] == 0).all() and (torch.linalg.vector_norm(initial[:, :4], dim=1) <= 1).all()
    boundary = conds["boundary"].sample(100, g, method)
    assert ((torch.linalg.vector_norm(boundary[:, :4], dim=1) - 1).abs() < 1e-12).all()
    assert ((boundary[:, 4] >= 0) & (boundary[:, 4] <= 1)).all()


@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_hjb_samplers_stay_in_their_sets(method):
    problem = HJB(dim=5)
    g = torch.Generator().manual_seed(1)
    conds = problem.conditions()
    pde = conds["pde"].sample(256, g, method)
    assert pde.shape == (256, 6) and ((pde >= 0) & (pde <= 1)).all()
    assert (conds["terminal"].sample(50, g, method)[:, 5] == 1).all()
    boundary = conds["boundary"].sample(100, g, method)
    on_face = (boundary[:, :5] == 0) | (boundary[:, :5] == 1)
    assert len(boundary) == 100 and on_face.any(dim=1).all() and ((boundary >= 0) & (boundary <= 1)).all()
    # 10 faces of equal area share the points evenly
    assert on_face.sum(dim=0).tolist() == [20] * 5


@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_one_dimensional_samplers_stay_in_their_sets(method):
    g = torch.Generator().manual_seed(1)
    kg = KleinGordon().conditions()
    pde = kg["pde"].sample(200, g, method)
    assert (pde[:, 0].abs() <= 1).all() and ((pde[:, 1] >= 0) & (pde[:, 1] <= 5)).all() and pde[:, 1].max() > 4
    assert (kg["initial"].sample(20, g, method)[:, 1] == 0).all()
    assert (kg["initial_velocity"].sample(20, g, method)[:, 1] == 0).all()
    assert set(kg["boundary"].sample(20, g, method)[:, 0].tolist()) == {-1.0, 1.0}
    ac = AllenCahn().conditions()
    assert (ac["periodic"].sample(20, g, method)[:, 0] == -1).all()
    assert (ac["initial"].sample(20, g, method)[:, 1] == 0).all()
    boundary = Helmholtz().conditions()["boundary"].sample(40, g, method)
    assert ((boundary.abs() == 1).any(dim=1)).all() and (boundary.abs() <= 1).all()


# -- metadata, arguments, evaluation grids --------------------------------------------------------------------------
def test_metadata():
    assert KleinGordon().parameters == {"alpha": -1.0, "beta": 0.0, "gamma": 1.0}
    assert set(KleinGordon().conditions()) == {"pde", "initial", "initial_velocity", "boundary"}
    assert AllenCahn().parameters == {"lam": 1e-4, "eps": 5.0}
    assert set(AllenCahn().conditions()) == {"pde", "initial", "periodic"}
    assert Helmholtz(a1=2).parameters == {"a1": 2.0, "a2": 1.0, "k": 1.0}
    assert Helmholtz().input_names == ("x", "y") and set(Helmholtz().conditions()) == {"pde", "boundary"}
    heat = Heat(dim=3)
    assert heat.input_names == ("x_1", "x_2", "x_3", "t") and heat.n_inputs == 4
    assert set(heat.conditions()) == {"pde", "initial", "boundary"}
    assert heat.domain.lower.tolist() == [-1, -1, -1, 0] and heat.domain.upper.tolist() == [1, 1, 1, 1]
    assert heat.domain.dim == 4 and heat.domain.lower.dtype == torch.float64
    hjb = HJB(dim=2)
    assert hjb.input_names == ("x_1", "x_2", "t") and set(hjb.conditions()) == {"pde", "terminal", "boundary"}
    assert hjb.domain.lower.tolist() == [0, 0, 0] and hjb.domain.upper.tolist() == [1, 1, 1]
    assert len(Heat().input_names) == 101 and len(HJB().input_names) == 21


@pytest.mark.parametrize("problem", [KleinGordon(alpha=-2, gamma=0.5), AllenCahn(lam=1e-3), Helmholtz(k=2),
                                     Heat(dim=3), HJB(dim=4, n_pde=10)], ids=repr)
def test_spec_round_trip(problem):
    rebuilt = from_spec(to_spec(problem))
    assert type(rebuilt) is type(problem) and rebuilt.init_args == problem.init_args
    assert rebuilt.input_names == problem.input_names


@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: Heat(dim=0), "dim"),
        (lambda: Heat(dim=2.5), "dim"),
        (lambda: Heat(dim=True), "dim"),
        (lambda: Heat(n_evaluation=0), "n_evaluation"),
        (lambda: HJB(dim=0), "dim"),
        (lambda: HJB(dim=2.5), "dim"),
        (lambda: HJB(n_terminal=-1), "n_terminal"),
        (lambda: AllenCahn(lam=0), "lam"),
        (lambda: AllenCahn(lam=-1e-4), "lam"),
        (lambda: AllenCahn(eps=-1), "eps"),
        (lambda: AllenCahn(eps=float("inf")), "eps"),
        (lambda: AllenCahn(n_periodic=0), "n_periodic"),
        (lambda: Helmholtz(k=-1), "k"),
        (lambda: Helmholtz(a1=float("nan")), "a1"),
        (lambda: Helmholtz(a2="1"), "a2"),
        (lambda: KleinGordon(alpha=0), "alpha"),
        (lambda: KleinGordon(alpha=1), "alpha"),
        (lambda: KleinGordon(beta=float("nan")), "beta"),
        (lambda: KleinGordon(gamma=None), "gamma"),
        (lambda: KleinGordon(n_initial=0), "n_initial"),
        (lambda: Ball(0), "dim"),
        (lambda: Ball(2, radius=0), "radius"),
        (lambda: BallTime(2, t_lower=1.0, t_upper=1.0), "t_upper"),
        (lambda: klein_gordon_reference(alpha=0.5), "alpha"),
        (lambda: klein_gordon_reference(nx=1), "nx"),
        (lambda: klein_gordon_method_of_lines(-1, 0, 1, 5, np.linspace(0, 1, 3)), "n_intervals"),
    ],
)
def test_bad_arguments_name_the_argument(factory, argument):
    with pytest.raises(ValueError, match=argument):
        factory()


def test_messages_are_for_people():
    with pytest.raises(ValueError, match=r"^Heat: dim must be an integer >= 1, got 2.5$"):
        Heat(dim=2.5)
    with pytest.raises(ValueError, match=r"^AllenCahn: eps must be a finite number >= 0, got -1$"):
        AllenCahn(eps=-1)


@pytest.mark.parametrize("problem", [Heat(dim=3, n_evaluation=500), HJB(dim=3, n_evaluation=500)], ids=repr)
def test_high_dimensional_problems_are_scored_on_fixed_scattered_points(problem):
    grid = problem.evaluation_grid()
    assert grid.shape == () and grid.points.shape == (500, 4) and grid.values.shape == (500, 1)
    assert torch.equal(grid.points, problem.evaluation_grid().points)
    assert torch.equal(grid.values, problem.exact(grid.points))
    assert ((grid.points >= problem.domain.lower) & (grid.points <= problem.domain.upper)).all()


def test_default_evaluation_grids():
    grid = KleinGordon().evaluation_grid()
    assert grid.shape == (201, 201) and grid.values.shape == (201 * 201, 1)
    assert float(grid.points[:, 1].max()) == 5.0
    grid = Helmholtz().evaluation_grid()
    assert grid.shape == (201, 201) and grid.values.abs().max() > 0.1


# -- Klein-Gordon reference solver ----------------------------------------------------------------------------------
def test_klein_gordon_reference_matches_the_exact_solution():
    t = np.linspace(0, 5, 51)
    x, u = klein_gordon_method_of_lines(-1, 0, 1, 40, t)
    exact = x[:, None] * np.cos(t)[None, :]
    assert np.linalg.norm(u - exact) / np.linalg.norm(exact) < 1e-6


def test_klein_gordon_reference_converges_under_refinement():
    t = np.linspace(0, 5, 26)
    solutions = {n: klein_gordon_method_of_lines(-2, 0.5, 0.5, n, t)[1][:: n // 12] for n in (12, 24, 48, 96)}
    finest = solutions[96]
    errors = [np.linalg.norm(solutions[n] - finest) / np.linalg.norm(finest) for n in (12, 24, 48)]
    # at least second order: the data are not second-order compatible at the corners (module docstring)
    assert errors[0] > 3 * errors[1] > 9 * errors[2]
    assert errors[2] < 2e-4


def test_klein_gordon_singular_part_carries_the_corner_jump_of_the_reference():
    """At (-2, 1, 0) the data ask u_tt(-1, 0) = 1 where the PDE gives 3: the reference's u_tt drops by 2 across the
    characteristic from (-1, 0); after the singular part is subtracted it runs on smoothly."""
    problem = KleinGordon(alpha=-2.0, beta=1.0, gamma=0.0)
    assert problem.corner_jumps() == (-2.0, 0.0)
    t = np.linspace(0.0, 1.0, 401)
    x, u = klein_gordon_method_of_lines(-2.0, 1.0, 0.0, 400, t)
    i = int(np.argmin(abs(x + 0.5)))
    singular = problem.singular_part(torch.tensor(np.stack([np.full_like(t, x[i]), t], 1))).numpy()[:, 0]
    crossing = (x[i] + 1) / math.sqrt(2)

    def jump(v):  # mean u_tt just after the crossing minus just before (the method of lines smears it a little)
        u_tt = (v[2:] - 2 * v[1:-1] + v[:-2]) / (t[1] - t[0]) ** 2
        mean = lambda lo, hi: u_tt[(t[1:-1] > crossing + lo) & (t[1:-1] < crossing + hi)].mean()  # noqa: E731
        return mean(0.03, 0.06) - mean(-0.06, -0.03)

    assert -2.2 < jump(u[i]) < -1.7
    assert abs(jump(u[i] - singular)) < 0.15


def test_klein_gordon_singular_part_vanishes_where_the_data_are_compatible():
    x = KleinGordon().domain.sample(64, torch.Generator().manual_seed(0))
    n = torch.sin(3 * x[:, :1] + x[:, 1:2])
    for alpha in (-1.0, -1.7):
        problem = KleinGordon(alpha=alpha, beta=0.0, gamma=1.0, corner_singularity=True)
        assert problem.corner_jumps() == (0.0, 0.0) and not problem.singular_part(x).any()
        expected = x[:, :1] * torch.cos(x[:, 1:2]) + torch.tanh(x[:, 1:2]) ** 2 * (1 - x[:, :1] ** 2) * n
        torch.testing.assert_close(problem.hard_constraint(x, n), expected)
    assert KleinGordon(alpha=-1.5, beta=0.5, gamma=0.25).corner_jumps() == (-1.25, -0.25)
    with pytest.raises(ValueError, match="KleinGordon: corner_singularity must be true or false, got 'yes'"):
        KleinGordon(corner_singularity="yes")


def test_klein_gordon_evaluation_grid_uses_the_cached_reference(isolated_cache, monkeypatch):
    problem = KleinGordon(alpha=-2, beta=0.5, gamma=0.5)
    monkeypatch.setattr(problem, "grid_shape", (21, 11))
    grid = problem.evaluation_grid()
    assert grid.shape == (21, 11) and grid.values.shape == (231, 1)
    assert len(list(isolated_cache.glob("klein_gordon_mol-*.npz"))) == 1
    u = grid.values.reshape(21, 11)
    points = grid.points.reshape(21, 11, 2)
    assert torch.allclose(u[:, 0], points[:, 0, 0], atol=1e-12)  # u(x, 0) = x
    assert torch.allclose(u[-1], torch.cos(points[-1, :, 1]), atol=1e-12)  # u(1, t) = cos t
    ref = klein_gordon_reference(-2, 0.5, 0.5, nx=21, nt=11)
    np.testing.assert_array_equal(ref["u"], u.numpy())
    assert ref["x"].shape == (21,) and ref["t"][-1] == 5.0
