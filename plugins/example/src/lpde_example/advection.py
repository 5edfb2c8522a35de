"""Linear advection in one space dimension with a travelling-wave solution."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import finite_float, positive_int


class Advection(Problem):
    """u_t + c u_x = 0 for x in [0, 2 pi], t in [0, 1], u(x, 0) = sin(x), inflow u = sin(x - c t) at the upwind
    end (x = 0 for c >= 0, x = 2 pi for c < 0); exact u = sin(x - c t).

    Args:
        c: advection speed (any finite number; its sign picks the inflow boundary).
        n_pde: default number of interior collocation points per step.
        n_initial: default number of points on t = 0.
        n_boundary: default number of points on the inflow boundary.
    """

    input_names = ("x", "t")
    parameter_names = ("c",)
    grid_shape = (101, 101)

    def __init__(self, c: float = 1.0, n_pde: int = 1000, n_initial: int = 100, n_boundary: int = 100) -> None:
        self.c = finite_float("Advection", "c", c)
        self.n_pde = positive_int("Advection", "n_pde", n_pde)
        self.n_initial = positive_int("Advection", "n_initial", n_initial)
        self.n_boundary = positive_int("Advection", "n_boundary", n_boundary)
        self.domain = Box([0.0, 0.0], [2 * math.pi, 1.0])

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(x[:, :1] - self.c * x[:, 1:2])

    def conditions(self) -> dict[str, Condition]:
        c = self.c
        inflow = "lower" if c >= 0 else "upper"

        def pde(f):
            return f["u_t"] + c * f["u_x"]

        def initial(f):
            return f["u"] - torch.sin(f["x"])

        def boundary(f):
            return f["u"] - torch.sin(f["x"] - c * f["t"])

        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "initial": Condition("initial", lambda n, g, m: self.domain.sample_face(n, 1, "lower", g, m),
                                 initial, self.n_initial),
            "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_face(n, 0, inflow, g, m),
                                  boundary, self.n_boundary),
        }
