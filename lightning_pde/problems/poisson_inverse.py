"""An inverse Poisson problem: recover the field u and the coefficient a from noisy u, PINNacle's PInv task (Hao et
al. 2024, arXiv 2306.08827; `src/pde/inverse.py`, class ``PoissonInv``, of i207M/PINNacle at commit 6f8d69c)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, PointData, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import integer_at_least, nonnegative_float, positive_int


def exact_u(x: Tensor) -> Tensor:
    """u = sin(pi x) sin(pi y), x (N, 2) -> (N, 1)."""
    return torch.sin(math.pi * x[:, :1]) * torch.sin(math.pi * x[:, 1:2])


def exact_a(x: Tensor) -> Tensor:
    """a = 1 / (1 + x^2 + y^2 + (x - 1)^2 + (y - 1)^2), x (N, 2) -> (N, 1)."""
    xs, ys = x[:, :1], x[:, 1:2]
    return 1 / (1 + xs**2 + ys**2 + (xs - 1) ** 2 + (ys - 1) ** 2)


def source(xs: Tensor, ys: Tensor) -> Tensor:
    """f = -div(a grad u) of the exact u and a, same shape as xs: with grad a = -2 a^2 (2x - 1, 2y - 1),
    f = 2 pi^2 a sin(pi x) sin(pi y) + 2 pi a^2 ((2x - 1) cos(pi x) sin(pi y) + (2y - 1) sin(pi x) cos(pi y))."""
    a = 1 / (1 + xs**2 + ys**2 + (xs - 1) ** 2 + (ys - 1) ** 2)
    sx, cx, sy, cy = torch.sin(math.pi * xs), torch.cos(math.pi * xs), torch.sin(math.pi * ys), torch.cos(math.pi * ys)
    return 2 * math.pi**2 * a * sx * sy + 2 * math.pi * a**2 * ((2 * xs - 1) * cx * sy + (2 * ys - 1) * sx * cy)


class PoissonInverse(Problem):
    """-div(a grad u) = f on [0, 1]^2 with outputs (u, a): u = sin(pi x) sin(pi y) and
    a = 1 / (1 + x^2 + y^2 + (x - 1)^2 + (y - 1)^2) are to be recovered from observations of u with Gaussian noise on
    a `grid` x `grid` lattice (end points included) and of a on the boundary; f is computed from the exact pair.

    Conditions, as PINNacle sets them: ``pde`` (div(a grad u) + f, expanded as a (u_xx + u_yy) + a_x u_x + a_y u_y
    + f), ``data`` (the noisy u, a :class:`PointData`: every observation each step) and ``boundary`` (a equal to
    the exact a on the four sides). PINNacle draws the noise unseeded; here it is seeded. PINNacle's source term
    has (2x + 1) and (2y + 1) where differentiating a gives (2x - 1) and (2y - 1), so its exact pair does not solve
    its own equation; this problem uses f from the exact pair, as the task states. Scored against the exact (u, a)
    on a 101 x 101 grid, both outputs together.

    Args:
        noise: standard deviation of the noise on the observed u, >= 0 (PINNacle: 0.1).
        grid: observations per side of the lattice, >= 2 (PINNacle: 50, 2500 observations).
        seed: seed of the noise.
        n_pde: default number of interior collocation points per step.
        n_boundary: default number of points on the boundary, where a is given.
    """

    input_names = ("x", "y")
    output_names = ("u", "a")
    grid_shape = (101, 101)
    hard_conditions = ("boundary",)

    def __init__(self, noise: float = 0.1, grid: int = 50, seed: int = 0, n_pde: int = 4000,
                 n_boundary: int = 512) -> None:
        self.noise = nonnegative_float("PoissonInverse", "noise", noise)
        self.grid = integer_at_least("PoissonInverse", "grid", grid, 2)
        self.seed = integer_at_least("PoissonInverse", "seed", seed, 0)
        self.n_pde = positive_int("PoissonInverse", "n_pde", n_pde)
        self.n_boundary = positive_int("PoissonInverse", "n_boundary", n_boundary)
        self.domain = Box([0.0, 0.0], [1.0, 1.0])
        self.observation_points = self.domain.grid((self.grid, self.grid))
        generator = torch.Generator().manual_seed(self.seed)
        noise_sample = torch.randn(len(self.observation_points), 1, generator=generator, dtype=torch.float64)
        #: the noisy observations of u at `observation_points`, (grid^2, 1)
        self.observations = exact_u(self.observation_points) + self.noise * noise_sample

    def exact(self, x: Tensor) -> Tensor:
        return torch.cat([exact_u(x), exact_a(x)], dim=1)

    def conditions(self) -> dict[str, Condition]:
        def pde(f):
            a = f["a"]
            return a * (f["u_xx"] + f["u_yy"]) + f["a_x"] * f["u_x"] + f["a_y"] * f["u_y"] + source(f["x"], f["y"])

        def boundary(f):
            return f["a"] - exact_a(f.x)[:, 0]

        faces = [(0, "lower"), (0, "upper"), (1, "lower"), (1, "upper")]
        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "data": PointData(self.observation_points, self.observations, outputs=("u",)),
            "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_faces(n, faces, g, m), boundary,
                                  self.n_boundary),
        }

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        """u = n_u, a = g + 16 x (1 - x) y (1 - y) n_a, where g is the transfinite (Coons) interpolation of a's
        boundary values into the square: built from the boundary data alone (not from the exact a inside), it
        matches them on all four sides, so the ``boundary`` condition holds exactly. u has no boundary condition in
        this task, only its observations."""
        xs, ys = x[:, :1], x[:, 1:2]
        zero, one = torch.zeros_like(xs), torch.ones_like(xs)

        def a_at(px: Tensor, py: Tensor) -> Tensor:
            return exact_a(torch.cat([px, py], dim=1))

        sides = (1 - xs) * a_at(zero, ys) + xs * a_at(one, ys) + (1 - ys) * a_at(xs, zero) + ys * a_at(xs, one)
        corners = ((1 - xs) * (1 - ys) * a_at(zero, zero) + xs * (1 - ys) * a_at(one, zero)
                   + (1 - xs) * ys * a_at(zero, one) + xs * ys * a_at(one, one))
        return torch.cat([n[:, :1], sides - corners + 16 * xs * (1 - xs) * ys * (1 - ys) * n[:, 1:2]], dim=1)
