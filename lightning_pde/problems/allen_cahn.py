"""The Allen-Cahn equation (docs/design.md), periodic in x, scored against a spectral reference solution."""

from __future__ import annotations

import math

import torch

from lightning_pde.problems.base import Condition, EvaluationGrid, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import nonnegative_float, positive_float, positive_int


class AllenCahn(Problem):
    """u_t - lam u_xx + eps (u^3 - u) = 0, x in [-1, 1], t in [0, 1], u(x, 0) = x^2 cos(pi x), 2-periodic in x.

    Conditions: ``pde``, ``initial`` and ``periodic``. The periodic residual compares u and u_x at (-1, t) and
    (1, t) (shape (n, 2)); its points lie on x = -1 and the other side is reached with ``Fields.at``. The reference
    solution (:func:`lightning_pde.reference.allen_cahn.allen_cahn_reference`) is given on 201 (x) × 101 (t)
    points. There is no hard-constraint transform: the initial data are periodic in value but not in slope
    (u_x(-1, 0) = 2, u_x(1, 0) = -2), so a lift u = x^2 cos(pi x) + t n fights the periodic condition. The
    classic benchmark (Raissi, Perdikaris & Karniadakis 2019, J. Comput. Phys. 378) has lam = 1e-4, eps = 5; one
    PINN over the whole of [0, 1] settles on a wrong solution there (~0.5 relative L2), so
    ``configs/pinn/allen_cahn.yaml`` marches in time (:class:`~lightning_pde.callbacks.time_marching.TimeMarching`).

    Args:
        lam: diffusion coefficient, > 0.
        eps: reaction strength, >= 0 (eps < 0 turns the double-well reaction into one that blows up).
        n_pde: default number of interior collocation points per step.
        n_initial: default number of points on t = 0.
        n_periodic: default number of point pairs (x = -1 and x = 1) per step.
    """

    input_names = ("x", "t")
    parameter_names = ("lam", "eps")
    grid_shape = (201, 101)
    periodic_inputs = {"x": 2.0}

    def __init__(self, lam: float = 1e-4, eps: float = 5.0, n_pde: int = 4000, n_initial: int = 256,
                 n_periodic: int = 256) -> None:
        self.lam = positive_float("AllenCahn", "lam", lam)
        self.eps = nonnegative_float("AllenCahn", "eps", eps)
        self.n_pde = positive_int("AllenCahn", "n_pde", n_pde)
        self.n_initial = positive_int("AllenCahn", "n_initial", n_initial)
        self.n_periodic = positive_int("AllenCahn", "n_periodic", n_periodic)
        self.domain = Box([-1.0, 0.0], [1.0, 1.0])

    def conditions(self) -> dict[str, Condition]:
        lam, eps = self.lam, self.eps
        period = self.periodic_inputs["x"]

        def pde(f):
            u = f["u"]
            return f["u_t"] - lam * f["u_xx"] + eps * (u**3 - u)

        def initial(f):
            x = f["x"]
            return f["u"] - x**2 * torch.cos(math.pi * x)

        def periodic(f):
            shifted = f.x.detach().clone()
            shifted[:, 0] += period
            other = f.at(shifted)
            return torch.stack([f["u"] - other["u"], f["u_x"] - other["u_x"]], dim=1)

        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "initial": Condition("initial", lambda n, g, m: self.domain.sample_face(n, 1, "lower", g, m),
                                 initial, self.n_initial),
            "periodic": Condition("periodic", lambda n, g, m: self.domain.sample_face(n, 0, "lower", g, m),
                                  periodic, self.n_periodic),
        }

    def evaluation_grid(self) -> EvaluationGrid:
        from lightning_pde.reference.allen_cahn import allen_cahn_reference

        nx, nt = self.grid_shape
        ref = allen_cahn_reference(lam=self.lam, eps=self.eps, nx=nx, nt=nt)
        u = torch.as_tensor(ref["u"], dtype=torch.float64)
        if tuple(u.shape) != (nx, nt):
            raise RuntimeError(f"AllenCahn: the reference solution has shape {tuple(u.shape)}, expected {(nx, nt)}")
        points = self.domain.grid(self.grid_shape)
        return EvaluationGrid(points, u.reshape(-1, 1), (nx, nt))
