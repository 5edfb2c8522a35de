"""The nonlinear Klein-Gordon equation (DESIGN.md), the parametric benchmark of GPT-PINN (arXiv 2303.14878)."""

from __future__ import annotations


import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, EvaluationGrid, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import finite_float, positive_int

#: the parameters at which u = x cos t is the exact solution
EXACT_PARAMETERS = (-1.0, 0.0, 1.0)


class KleinGordon(Problem):
    """u_tt + alpha u_xx + beta u + gamma u^2 + x cos t - x^2 cos^2 t = 0, x in [-1, 1], t in [0, 5],
    u(x, 0) = x, u_t(x, 0) = 0, u(±1, t) = ±cos t.

    The forcing is built so that u = x cos t solves the problem at (alpha, beta, gamma) = (-1, 0, 1); there
    :meth:`exact` returns it. Elsewhere :meth:`exact` returns None and the evaluation grid holds the method-of-lines
    reference solution (:func:`lightning_pde.reference.klein_gordon.klein_gordon_reference`, fourth-order finite
    differences in x, DOP853 in t) on 201 (x) × 201 (t) points.

    Conditions: ``pde``, ``initial`` (u(x, 0) = x), ``initial_velocity`` (u_t(x, 0) = 0) and ``boundary``
    (x = ±1).

    Args:
        alpha: coefficient of u_xx, < 0 (a wave equation with speed sqrt(-alpha); alpha >= 0 is ill-posed).
            GPT-PINN samples alpha in [-2, -1].
        beta: coefficient of u, any finite number (GPT-PINN: [0, 1]).
        gamma: coefficient of u^2, any finite number (GPT-PINN: [0, 1]).
        n_pde: default number of interior collocation points per step.
        n_initial: default number of points on t = 0, for each of ``initial`` and ``initial_velocity``.
        n_boundary: default number of points on x = ±1.
    """

    input_names = ("x", "t")
    parameter_names = ("alpha", "beta", "gamma")
    grid_shape = (201, 201)
    hard_conditions = ("initial", "initial_velocity", "boundary")
    t_end = 5.0

    def __init__(self, alpha: float = -1.0, beta: float = 0.0, gamma: float = 1.0, n_pde: int = 4000,
                 n_initial: int = 256, n_boundary: int = 256) -> None:
        self.alpha = finite_float("KleinGordon", "alpha", alpha)
        if self.alpha >= 0:
            raise ValueError(f"KleinGordon: alpha must be < 0 (a wave equation with speed sqrt(-alpha)), "
                             f"got {alpha!r}")
        self.beta = finite_float("KleinGordon", "beta", beta)
        self.gamma = finite_float("KleinGordon", "gamma", gamma)
        self.n_pde = positive_int("KleinGordon", "n_pde", n_pde)
        self.n_initial = positive_int("KleinGordon", "n_initial", n_initial)
        self.n_boundary = positive_int("KleinGordon", "n_boundary", n_boundary)
        self.domain = Box([-1.0, 0.0], [1.0, self.t_end])

    def exact(self, x: Tensor) -> Tensor | None:
        if (self.alpha, self.beta, self.gamma) != EXACT_PARAMETERS:
            return None
        return x[:, :1] * torch.cos(x[:, 1:2])

    def conditions(self) -> dict[str, Condition]:
        alpha, beta, gamma = self.alpha, self.beta, self.gamma

        def pde(f):
            x, cos_t, u = f["x"], torch.cos(f["t"]), f["u"]
            return f["u_tt"] + alpha * f["u_xx"] + beta * u + gamma * u**2 + x * cos_t - x**2 * cos_t**2

        def initial(f):
            return f["u"] - f["x"]

        def initial_velocity(f):
            return f["u_t"]

        def boundary(f):
            # x = ±1 on the boundary, so x cos t is ±cos t.
            return f["u"] - f["x"] * torch.cos(f["t"])

        def on_initial_line(n, g, m):
            return self.domain.sample_face(n, 1, "lower", g, m)

        sides = [(0, "lower"), (0, "upper")]
        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "initial": Condition("initial", on_initial_line, initial, self.n_initial),
            "initial_velocity": Condition("initial", on_initial_line, initial_velocity, self.n_initial),
            "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_faces(n, sides, g, m),
                                  boundary, self.n_boundary),
        }

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        """u = x cos t + t^2 (1 - x^2) n: the t^2 factor keeps u_t(x, 0) = 0. (At the default parameters the lift
        x cos t is already the exact solution, so the network only has to learn n = 0 there.)"""
        xs, t = x[:, :1], x[:, 1:2]
        return xs * torch.cos(t) + t**2 * (1 - xs**2) * n

    def evaluation_grid(self) -> EvaluationGrid:
        if (self.alpha, self.beta, self.gamma) == EXACT_PARAMETERS:
            return super().evaluation_grid()
        from lightning_pde.reference.klein_gordon import klein_gordon_reference

        nx, nt = self.grid_shape
        ref = klein_gordon_reference(self.alpha, self.beta, self.gamma, nx=nx, nt=nt, t_end=self.t_end)
        points = self.domain.grid(self.grid_shape)
        values = torch.as_tensor(ref["u"], dtype=torch.float64).reshape(-1, 1)
        return EvaluationGrid(points, values, (nx, nt))
