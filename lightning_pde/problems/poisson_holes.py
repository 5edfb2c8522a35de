"""Laplace's equation on a square with four holes, PINNacle's Poisson2d-C task (Hao et al. 2024, arXiv 2306.08827;
`src/pde/poisson.py`, class ``Poisson2D_Classic``, of i207M/PINNacle at commit 6f8d69c), scored against PINNacle's
COMSOL solution."""

from __future__ import annotations

from torch import Tensor

from lightning_pde.geometry import Disk, Rectangle
from lightning_pde.problems.base import Condition, EvaluationGrid, Problem
from lightning_pde.problems.lid_driven_cavity import PINNACLE_DATA
from lightning_pde.validation import positive_int

#: centres of the four holes and their radius
HOLE_CENTERS = ((0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3))
HOLE_RADIUS = 0.1


class PoissonHoles(Problem):
    """Laplace(u) = 0 on the square [-0.5, 0.5]^2 minus the four disks of radius 0.1 centred at (+-0.3, +-0.3),
    u = 1 on the square's sides and u = 0 on the four circles (PINNacle's Poisson2d-C).

    Conditions: ``pde`` (r^2 (u_xx + u_yy), with r the holes' radius), ``outer`` (u - 1 on the square's sides) and ``holes`` (u on the circles),
    boundary points chosen from the domain's boundary by part (:meth:`on_holes`). Scored against PINNacle's COMSOL
    solution ``poisson1_cg_data.dat`` (1246 nodes, columns x, y, u).

    The residual is written in the length unit of the holes (x' = x / r): the solution turns over the holes' radius,
    where its second derivatives are of order 1 / r^2 = 100 each and cancel in the Laplacian. Written in the square's
    unit, that scale squared (1e4) weighs the residual so far above the boundary values that training is trapped at
    the constant u = 1/2 (zero residual, both boundary terms 1/4): plain Adam, boundary weights 100x and
    gradient-norm weighting all stay there (L2RE 0.63; PINNacle's vanilla PINN: 0.69). In the holes' unit the
    network leaves that plateau within a few hundred Adam steps.

    Args:
        n_pde: default number of interior collocation points per step.
        n_outer: default number of points on the square's sides.
        n_holes: default number of points on the four circles together.
    """

    input_names = ("x", "y")
    reference_file = PINNACLE_DATA / "poisson1_cg_data.dat"

    def __init__(self, n_pde: int = 4000, n_outer: int = 512, n_holes: int = 512) -> None:
        self.n_pde = positive_int("PoissonHoles", "n_pde", n_pde)
        self.n_outer = positive_int("PoissonHoles", "n_outer", n_outer)
        self.n_holes = positive_int("PoissonHoles", "n_holes", n_holes)
        domain = Rectangle([-0.5, -0.5], [0.5, 0.5])
        for center in HOLE_CENTERS:
            domain = domain - Disk(center, HOLE_RADIUS)
        self.domain = domain

    @staticmethod
    def on_holes(points: Tensor) -> Tensor:
        """bool (N,): boundary points on the circles (every circle lies within max(|x|, |y|) <= 0.4)."""
        return points.abs().amax(dim=1) < 0.45

    def conditions(self) -> dict[str, Condition]:
        dom = self.domain

        def pde(f):  # in units of the holes' radius: r^2 Laplace(u) (see the class docstring)
            return HOLE_RADIUS**2 * (f["u_xx"] + f["u_yy"])

        def outer(f):
            return f["u"] - 1

        def holes(f):
            return f["u"]

        def on_square(points):
            return ~self.on_holes(points)

        return {
            "pde": Condition("pde", dom.sample, pde, self.n_pde),
            "outer": Condition("boundary", lambda n, g, m: dom.sample_boundary(n, g, m, where=on_square), outer,
                               self.n_outer),
            "holes": Condition("boundary", lambda n, g, m: dom.sample_boundary(n, g, m, where=self.on_holes), holes,
                               self.n_holes),
        }

    def evaluation_grid(self) -> EvaluationGrid:
        from lightning_pde.reference import read_table

        table = read_table(self.reference_file, columns=3)
        return EvaluationGrid(table[:, :2].contiguous(), table[:, 2:].contiguous(), ())
