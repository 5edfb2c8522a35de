"""A Poisson problem on a domain with a hole, with a Neumann condition on the hole and a Robin condition outside:
the smallest problem that needs the geometry's boundary parts and normals, with an exact solution to score against."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_pde.geometry import Disk
from lightning_pde.problems.base import Condition, Problem
from lightning_pde.validation import positive_float, positive_int


def _exact(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """u = sin(2x + y) + cos(x - 2y)/2 and its gradient; -Laplace(u) = 5u."""
    u = torch.sin(2 * x + y) + 0.5 * torch.cos(x - 2 * y)
    u_x = 2 * torch.cos(2 * x + y) - 0.5 * torch.sin(x - 2 * y)
    u_y = torch.cos(2 * x + y) + torch.sin(x - 2 * y)
    return u, u_x, u_y


class AnnulusPoisson(Problem):
    """-Laplace(u) = f on the annulus inner_radius < |x| < 1, du/dn = g on the hole's circle (Neumann) and
    du/dn + u = h on the outer circle (Robin), n the outward normal of the domain (into the hole on the inner
    circle). f, g and h come from the exact solution u = sin(2x + y) + cos(x - 2y)/2; g and h use the circles'
    analytic normals, so a wrong geometry normal shows as an error in the solution.

    Args:
        inner_radius: radius of the hole, in [0.01, 0.99].
        n_pde: interior points per step.
        n_inner: points per step on the hole's circle.
        n_outer: points per step on the outer circle.
    """

    input_names = ("x", "y")

    def __init__(self, inner_radius: float = 0.5, n_pde: int = 2000, n_inner: int = 256, n_outer: int = 512) -> None:
        self.inner_radius = positive_float("AnnulusPoisson", "inner_radius", inner_radius)
        # a hole far below the outer circle's scale is lost to the geometry's boundary tolerance (its points
        # cannot be told from the centre), one touching the outer circle leaves no domain
        if not 0.01 <= self.inner_radius <= 0.99:
            raise ValueError(f"AnnulusPoisson: inner_radius must be in [0.01, 0.99], got {inner_radius!r}")
        self.n_pde = positive_int("AnnulusPoisson", "n_pde", n_pde)
        self.n_inner = positive_int("AnnulusPoisson", "n_inner", n_inner)
        self.n_outer = positive_int("AnnulusPoisson", "n_outer", n_outer)
        self.domain = Disk([0.0, 0.0], 1.0) - Disk([0.0, 0.0], self.inner_radius)

    def exact(self, x: Tensor) -> Tensor:
        return _exact(x[:, 0], x[:, 1])[0][:, None]

    def on_hole(self, points: Tensor) -> Tensor:
        """The part of the boundary on the hole's circle, (N,) bool."""
        return points.norm(dim=1) < (1 + self.inner_radius) / 2

    def conditions(self) -> dict[str, Condition]:
        dom = self.domain

        def pde(f):
            u = _exact(f["x"], f["y"])[0]
            return -f.laplacian("u") - 5 * u

        def neumann(f):
            _, u_x, u_y = _exact(f["x"], f["y"])
            r = torch.sqrt(f["x"] ** 2 + f["y"] ** 2)
            return f.normal_derivative("u") - (u_x * -f["x"] + u_y * -f["y"]) / r

        def robin(f):
            u, u_x, u_y = _exact(f["x"], f["y"])
            r = torch.sqrt(f["x"] ** 2 + f["y"] ** 2)
            return f.normal_derivative("u") + f["u"] - ((u_x * f["x"] + u_y * f["y"]) / r + u)

        def outside(points):
            return ~self.on_hole(points)

        return {
            "pde": Condition("pde", dom.sample, pde, self.n_pde),
            "neumann": Condition("boundary", lambda n, g, m: dom.sample_boundary(n, g, m, where=self.on_hole),
                                 neumann, self.n_inner),
            "robin": Condition("boundary", lambda n, g, m: dom.sample_boundary(n, g, m, where=outside),
                               robin, self.n_outer),
        }
