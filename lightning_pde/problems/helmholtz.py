"""The Helmholtz equation on [-1, 1]^2 with a manufactured solution (docs/design.md)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import finite_float, positive_int


def helmholtz_source(x: Tensor, y: Tensor, a1: float, a2: float, k: float) -> Tensor:
    """q = u_xx + u_yy + k^2 u for u = sin(a1 pi x) sin(a2 pi y) (x^2 - 1)(y^2 - 1), same shape as x and y.

    With X = x^2 - 1, Y = y^2 - 1, s_i / c_i the sine / cosine of a_i pi times its coordinate, and
    (sin(a pi x) X)'' = -(a pi)^2 sin(a pi x) X + 4 a pi x cos(a pi x) + 2 sin(a pi x)::

        q = s1 s2 [(k^2 - (a1 pi)^2 - (a2 pi)^2) X Y + 2 X + 2 Y]
            + 4 a1 pi x c1 s2 Y + 4 a2 pi y s1 c2 X
    """
    w1, w2 = a1 * math.pi, a2 * math.pi
    s1, c1, s2, c2 = torch.sin(w1 * x), torch.cos(w1 * x), torch.sin(w2 * y), torch.cos(w2 * y)
    X, Y = x**2 - 1, y**2 - 1
    return (s1 * s2 * ((k**2 - w1**2 - w2**2) * X * Y + 2 * X + 2 * Y)
            + 4 * w1 * x * c1 * s2 * Y + 4 * w2 * y * s1 * c2 * X)


class Helmholtz(Problem):
    """u_xx + u_yy + k^2 u = q on [-1, 1]^2, u = 0 on the boundary, with the manufactured exact solution
    u = sin(a1 pi x) sin(a2 pi y)(x^2 - 1)(y^2 - 1) and q from :func:`helmholtz_source`.

    Conditions: ``pde`` and ``boundary``.

    Args:
        a1: frequency of the solution in x (in half-periods per unit length), any finite number.
        a2: frequency of the solution in y, any finite number.
        k: wave number, a finite number >= 0.
        n_pde: default number of interior collocation points per step.
        n_boundary: default number of boundary points per step.
    """

    input_names = ("x", "y")
    parameter_names = ("a1", "a2", "k")
    grid_shape = (201, 201)
    hard_conditions = ("boundary",)

    def __init__(self, a1: float = 1.0, a2: float = 1.0, k: float = 1.0, n_pde: int = 4000,
                 n_boundary: int = 400) -> None:
        self.a1 = finite_float("Helmholtz", "a1", a1)
        self.a2 = finite_float("Helmholtz", "a2", a2)
        self.k = finite_float("Helmholtz", "k", k)
        if self.k < 0:
            raise ValueError(f"Helmholtz: k must be a finite number >= 0, got {k!r}")
        self.n_pde = positive_int("Helmholtz", "n_pde", n_pde)
        self.n_boundary = positive_int("Helmholtz", "n_boundary", n_boundary)
        self.domain = Box([-1.0, -1.0], [1.0, 1.0])

    def exact(self, x: Tensor) -> Tensor:
        xs, ys = x[:, :1], x[:, 1:2]
        return torch.sin(self.a1 * math.pi * xs) * torch.sin(self.a2 * math.pi * ys) * (xs**2 - 1) * (ys**2 - 1)

    def conditions(self) -> dict[str, Condition]:
        a1, a2, k = self.a1, self.a2, self.k
        faces = [(0, "lower"), (0, "upper"), (1, "lower"), (1, "upper")]

        def pde(f):
            return f["u_xx"] + f["u_yy"] + k**2 * f["u"] - helmholtz_source(f["x"], f["y"], a1, a2, k)

        def boundary(f):
            return f["u"]

        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_faces(n, faces, g, m),
                                  boundary, self.n_boundary),
        }

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        """u = (1 - x^2)(1 - y^2) n vanishes on the boundary for any n."""
        xs, ys = x[:, :1], x[:, 1:2]
        return (1 - xs**2) * (1 - ys**2) * n
