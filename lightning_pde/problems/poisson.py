"""Poisson's equation on the unit square (docs/design.md)."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import positive_int


class Poisson2D(Problem):
    """-Δu = sin(x1 + x2) on [0, 1]^2 with u = sin(x1 + x2) / 2 on the boundary; exact u = sin(x1 + x2) / 2.

    Args:
        n_pde: default number of interior collocation points per step.
        n_boundary: default number of boundary points per step.
    """

    input_names = ("x1", "x2")
    grid_shape = (101, 101)
    hard_conditions = ("boundary",)

    def __init__(self, n_pde: int = 2000, n_boundary: int = 400) -> None:
        self.n_pde = positive_int("Poisson2D", "n_pde", n_pde)
        self.n_boundary = positive_int("Poisson2D", "n_boundary", n_boundary)
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(x[:, :1] + x[:, 1:2]) / 2

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        x1, x2 = x[:, :1], x[:, 1:2]
        return torch.sin(x1 + x2) / 2 + x1 * (1 - x1) * x2 * (1 - x2) * n

    def conditions(self) -> dict[str, Condition]:
        faces = [(0, "lower"), (0, "upper"), (1, "lower"), (1, "upper")]

        def pde(f):
            return -f.laplacian("u") - torch.sin(f["x1"] + f["x2"])

        def boundary(f):
            return f["u"] - torch.sin(f["x1"] + f["x2"]) / 2

        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_faces(n, faces, g, m),
                                  boundary, self.n_boundary),
        }
