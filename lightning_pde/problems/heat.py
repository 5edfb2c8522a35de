"""The heat equation in the high-dimensional unit ball (docs/design.md), with a closed-form exact solution: the 100-D
benchmark of tensor-compressed, fully quantized PINN training (Lu et al. 2025, arXiv 2512.09202)."""

from __future__ import annotations

from torch import Tensor

from lightning_pde.problems.base import Condition, Problem
from lightning_pde.problems.domain import BallTime
from lightning_pde.validation import positive_int


class Heat(Problem):
    """u_t = Δu (the Laplacian in x only) on the unit ball in R^dim × [0, 1], exact u = |x|^2 / (2 dim) + t.

    Inputs are ``x_1, ..., x_dim, t`` (reach them with ``f.d("u", "x_1")``). Conditions: ``pde`` (uniform in the
    ball × [0, 1]), ``initial`` (t = 0, u = |x|^2 / (2 dim)) and ``boundary`` (|x| = 1, u = 1 / (2 dim) + t).
    The solution is scored at `n_evaluation` scattered points, uniform in the cylinder, drawn from a fixed seed.
    Hard constraint (``PINN(hard_constraints=True)``): u = |x|^2 / (2 dim) + t n(x, t) satisfies the initial condition
    exactly (the boundary condition stays a loss term).

    Args:
        dim: space dimension, an integer >= 1.
        n_pde: default number of interior collocation points per step.
        n_initial: default number of points on t = 0.
        n_boundary: default number of points on |x| = 1.
        n_evaluation: number of scattered evaluation points.
    """

    hard_conditions = ("initial",)

    def __init__(self, dim: int = 100, n_pde: int = 1000, n_initial: int = 200, n_boundary: int = 200,
                 n_evaluation: int = 10000) -> None:
        self.dim = positive_int("Heat", "dim", dim)
        self.n_pde = positive_int("Heat", "n_pde", n_pde)
        self.n_initial = positive_int("Heat", "n_initial", n_initial)
        self.n_boundary = positive_int("Heat", "n_boundary", n_boundary)
        self.n_evaluation = positive_int("Heat", "n_evaluation", n_evaluation)
        self.space_names = tuple(f"x_{i}" for i in range(1, self.dim + 1))
        self.input_names = (*self.space_names, "t")
        self.domain = BallTime(self.dim, radius=1.0, t_lower=0.0, t_upper=1.0)

    def initial_value(self, x: Tensor) -> Tensor:
        """u(x, 0) = |x|^2 / (2 dim), (N, 1), at points x (N, dim + 1) (the time column is ignored)."""
        return x[:, : self.dim].square().sum(dim=1, keepdim=True) / (2 * self.dim)

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        return self.initial_value(x) + x[:, self.dim:] * n

    def exact(self, x: Tensor) -> Tensor:
        return self.initial_value(x) + x[:, self.dim:]

    def conditions(self) -> dict[str, Condition]:
        dim, space = self.dim, self.space_names

        def pde(f):
            return f.d("u", "t") - f.laplacian("u", inputs=space)

        def initial(f):
            return f["u"] - self.initial_value(f.x)[:, 0]

        def boundary(f):
            return f["u"] - (1 / (2 * dim) + f["t"])

        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "initial": Condition("initial", self.domain.sample_initial, initial, self.n_initial),
            "boundary": Condition("boundary", self.domain.sample_boundary, boundary, self.n_boundary),
        }
