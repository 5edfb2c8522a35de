"""Viscous Burgers' equation (docs/design.md), scored against the Cole-Hopf reference solution."""

from __future__ import annotations

import math

import torch

from lightning_pde.problems.base import Condition, EvaluationGrid, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import positive_float, positive_int


class Burgers(Problem):
    """u_t + u u_x = nu u_xx, x in [-1, 1], t in [0, 1], u(x, 0) = -sin(pi x), u(±1, t) = 0.

    The reference solution is the Cole-Hopf transform evaluated with Gauss-Hermite quadrature
    (:func:`lightning_pde.reference.burgers_reference`) on a 256 (x) × 100 (t) grid.

    Args:
        nu: viscosity, > 0. The classic benchmark (Raissi et al. 2019) uses 0.01/pi.
        n_pde: default number of interior collocation points per step.
        n_initial: default number of points on t = 0.
        n_boundary: default number of points on x = ±1.
    """

    input_names = ("x", "t")
    parameter_names = ("nu",)
    grid_shape = (256, 100)
    hard_conditions = ("initial", "boundary")

    def __init__(self, nu: float = 0.01 / math.pi, n_pde: int = 4000, n_initial: int = 256,
                 n_boundary: int = 256) -> None:
        name = type(self).__name__  # a subclass (BurgersInverse) names itself in its errors
        self.nu = positive_float(name, "nu", nu)
        self.n_pde = positive_int(name, "n_pde", n_pde)
        self.n_initial = positive_int(name, "n_initial", n_initial)
        self.n_boundary = positive_int(name, "n_boundary", n_boundary)
        self.domain = Box([-1.0, 0.0], [1.0, 1.0])

    def conditions(self) -> dict[str, Condition]:
        nu = self.nu

        def pde(f):
            return f["u_t"] + f["u"] * f["u_x"] - nu * f["u_xx"]

        def initial(f):
            return f["u"] + torch.sin(math.pi * f["x"])

        def boundary(f):
            return f["u"]

        sides = [(0, "lower"), (0, "upper")]
        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "initial": Condition("initial", lambda n, g, m: self.domain.sample_face(n, 1, "lower", g, m),
                                 initial, self.n_initial),
            "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_faces(n, sides, g, m),
                                  boundary, self.n_boundary),
        }

    def hard_constraint(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        xs, t = x[:, :1], x[:, 1:2]
        return -torch.sin(math.pi * xs) + t * (1 - xs**2) * n

    def evaluation_grid(self) -> EvaluationGrid:
        from lightning_pde.reference import burgers_reference

        nx, nt = self.grid_shape
        ref = burgers_reference(nu=self.nu, nx=nx, nt=nt)
        points = self.domain.grid(self.grid_shape)
        values = torch.as_tensor(ref["u"], dtype=torch.float64).reshape(-1, 1)
        return EvaluationGrid(points, values, (nx, nt))
