"""A high-dimensional Hamilton-Jacobi-Bellman equation (docs/design.md), the 20-D benchmark of back-propagation-free and
tensor-compressed PINN training (Zhao et al. 2023, arXiv 2308.09858; Lu et al. 2025, arXiv 2512.09202)."""

from __future__ import annotations

from torch import Tensor

from lightning_pde.problems.base import Condition, Problem
from lightning_pde.problems.domain import Box
from lightning_pde.validation import positive_int

#: coefficient of |∇u|^2
MU = 0.05


class HJB(Problem):
    """u_t + Δu - 0.05 |∇u|^2 = -1 - 0.05 dim on [0, 1]^dim × [0, 1], u(x, 1) = |x|_1; exact u = |x|_1 + 1 - t.

    Δ and ∇ act on x only. The benchmark writes the right-hand side as -2: for u = |x|_1 + 1 - t one has u_t = -1,
    Δu = 0 and |∇u|^2 = dim (every x_i > 0 inside the cube, so |x|_1 is smooth there), so the stated exact solution
    holds with -2 only at dim = 20. The right-hand side used here, -1 - 0.05 dim, is -2 at dim = 20 (the paper's
    case, the default) and keeps u = |x|_1 + 1 - t exact for every dim.

    Inputs are ``x_1, ..., x_dim, t``. Conditions: ``pde``, ``terminal`` (t = 1, u = |x|_1; kind ``initial``,
    the condition on a time face) and ``boundary`` (the faces x_i = 0 or 1, spread evenly, with the exact solution
    as Dirichlet data, as in the paper). The solution is scored at `n_evaluation` scattered points, uniform in the
    domain, drawn from a fixed seed.

    Args:
        dim: space dimension, an integer >= 1.
        n_pde: default number of interior collocation points per step.
        n_terminal: default number of points on t = 1.
        n_boundary: default number of points on the faces of the cube.
        n_evaluation: number of scattered evaluation points.
    """

    def __init__(self, dim: int = 20, n_pde: int = 1000, n_terminal: int = 200, n_boundary: int = 200,
                 n_evaluation: int = 10000) -> None:
        self.dim = positive_int("HJB", "dim", dim)
        self.n_pde = positive_int("HJB", "n_pde", n_pde)
        self.n_terminal = positive_int("HJB", "n_terminal", n_terminal)
        self.n_boundary = positive_int("HJB", "n_boundary", n_boundary)
        self.n_evaluation = positive_int("HJB", "n_evaluation", n_evaluation)
        self.space_names = tuple(f"x_{i}" for i in range(1, self.dim + 1))
        self.input_names = (*self.space_names, "t")
        self.domain = Box([0.0] * (self.dim + 1), [1.0] * (self.dim + 1))
        #: right-hand side, -2 at dim = 20
        self.source = -1.0 - MU * self.dim

    def exact(self, x: Tensor) -> Tensor:
        return x[:, : self.dim].abs().sum(dim=1, keepdim=True) + 1 - x[:, self.dim:]

    def conditions(self) -> dict[str, Condition]:
        dim, space, source = self.dim, self.space_names, self.source

        def pde(f):
            grad = f.grad("u", inputs=space)
            return f.d("u", "t") + f.laplacian("u", inputs=space) - MU * grad.square().sum(dim=1) - source

        def terminal(f):
            return f["u"] - f.x[:, :dim].abs().sum(dim=1)

        def boundary(f):
            return f["u"] - (f.x[:, :dim].abs().sum(dim=1) + 1 - f["t"])

        faces = [(axis, side) for axis in range(dim) for side in ("lower", "upper")]
        return {
            "pde": Condition("pde", self.domain.sample, pde, self.n_pde),
            "terminal": Condition("initial", lambda n, g, m: self.domain.sample_face(n, dim, "upper", g, m),
                                  terminal, self.n_terminal),
            "boundary": Condition("boundary", lambda n, g, m: self.domain.sample_faces(n, faces, g, m),
                                  boundary, self.n_boundary),
        }
