"""Steady lid-driven cavity flow, PINNacle's NS2d-C task (Hao et al. 2024, arXiv 2306.08827; `src/pde/ns.py`,
class ``NS2D_LidDriven``, of i207M/PINNacle at commit 6f8d69c), scored against PINNacle's COMSOL solution."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, EvaluationGrid, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import positive_float, positive_int

#: PINNacle's reference files, vendored with their licence (README.md there)
PINNACLE_DATA = Path(__file__).resolve().parents[1] / "reference" / "data" / "pinnacle"


class LidDrivenCavity(Problem):
    """Steady incompressible Navier-Stokes on the unit square, outputs (u, v, p):

        u u_x + v u_y + p_x - nu (u_xx + u_yy) = 0,
        u v_x + v v_y + p_y - nu (v_xx + v_yy) = 0,
        u_x + v_y = 0,

    with u = lid * x (1 - x), v = 0 on the lid y = 1, u = v = 0 on the other three sides and p(0, 0) = 0 (PINNacle's
    NS2d-C: lid = 4, nu = 1/100, Re = 100).

    Conditions: ``pde`` (the three residuals as columns), ``lid``, ``walls`` and ``pressure`` (p at the corner
    (0, 0), which fixes the constant that the equations leave free). The evaluation is PINNacle's COMSOL solution
    ``lid_driven_a4.dat`` (10201 nodes, columns x, y, u, v, p; p(0, 0) = 0 there too), valid for the default
    `nu` and `lid` only; L2RE over u, v and p together, as PINNacle computes it.

    Args:
        nu: kinematic viscosity, > 0.
        lid: the lid's peak velocity is lid / 4 (u = lid x (1 - x) at y = 1), > 0.
        n_pde: default number of interior collocation points per step.
        n_lid: default number of points on the lid.
        n_walls: default number of points on the other three sides together.
    """

    input_names = ("x", "y")
    output_names = ("u", "v", "p")
    parameter_names = ("nu",)
    hard_conditions = ("lid", "walls")
    #: copies of the corner (0, 0) in the ``pressure`` condition: one per data-parallel rank, up to this many ranks
    n_pressure = 16
    reference_file = PINNACLE_DATA / "lid_driven_a4.dat"

    def __init__(self, nu: float = 1 / 100, lid: float = 4.0, n_pde: int = 4000, n_lid: int = 256,
                 n_walls: int = 512) -> None:
        self.nu = positive_float("LidDrivenCavity", "nu", nu)
        self.lid = positive_float("LidDrivenCavity", "lid", lid)
        self.n_pde = positive_int("LidDrivenCavity", "n_pde", n_pde)
        self.n_lid = positive_int("LidDrivenCavity", "n_lid", n_lid)
        self.n_walls = positive_int("LidDrivenCavity", "n_walls", n_walls)
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def lid_velocity(self, x: Tensor) -> Tensor:
        """u on the lid, lid x (1 - x), same shape as x."""
        return self.lid * x * (1 - x)

    def conditions(self) -> dict[str, Condition]:
        nu = self.nu

        def pde(f):
            u, v = f["u"], f["v"]
            momentum_x = u * f["u_x"] + v * f["u_y"] + f["p_x"] - nu * (f["u_xx"] + f["u_yy"])
            momentum_y = u * f["v_x"] + v * f["v_y"] + f["p_y"] - nu * (f["v_xx"] + f["v_yy"])
            continuity = f["u_x"] + f["v_y"]
            return torch.stack([momentum_x, momentum_y, continuity], dim=1)

        def lid(f):
            return torch.stack([f["u"] - self.lid_velocity(f["x"]), f["v"]], dim=1)

        def walls(f):
            return torch.stack([f["u"], f["v"]], dim=1)

        def pressure(f):
            return f["p"]

        def corner(n, g, m):
            return torch.zeros(n, 2, dtype=torch.float64)

        walls_faces = [(0, "lower"), (0, "upper"), (1, "lower")]
        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "lid": Condition("boundary", lambda n, g, m: self.domain.sample_face(n, 1, "upper", g, m), lid,
                             self.n_lid),
            "walls": Condition("boundary", lambda n, g, m: self.domain.sample_faces(n, walls_faces, g, m), walls,
                               self.n_walls),
            "pressure": Condition("boundary", corner, pressure, self.n_pressure),
        }

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        """u = lid x (1 - x) y + d n_u, v = d n_v, p = n_p, with d = 16 x (1 - x) y (1 - y) (1 at the centre): the
        lid and wall values hold exactly; the pressure's corner value stays a loss term."""
        xs, ys = x[:, :1], x[:, 1:2]
        d = 16 * xs * (1 - xs) * ys * (1 - ys)
        return torch.cat([self.lid_velocity(xs) * ys + d * n[:, :1], d * n[:, 1:2], n[:, 2:3]], dim=1)

    def evaluation_grid(self) -> EvaluationGrid:
        if (self.nu, self.lid) != (1 / 100, 4.0):
            raise NotImplementedError(f"LidDrivenCavity: the reference solution is for nu = 0.01 and lid = 4 only, "
                                      f"got nu = {self.nu}, lid = {self.lid}")
        from lightning_pde.reference import read_table

        table = read_table(self.reference_file, columns=5)
        return EvaluationGrid(table[:, :2].contiguous(), table[:, 2:].contiguous(), ())
