"""The nonlinear Klein-Gordon equation (docs/design.md), the parametric benchmark of GPT-PINN (arXiv 2303.14878)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, EvaluationGrid, Problem, second_order_in_time_conditions
from lightning_pde.problems.domain import Box
from lightning_pde.validation import boolean, finite_float, positive_int

#: the parameters at which u = x cos t is the exact solution
EXACT_PARAMETERS = (-1.0, 0.0, 1.0)


def _ramp(s: Tensor) -> Tensor:
    """tanh(max(s, 0))^2 / 2: zero for s <= 0, s^2 / 2 near 0+ (so its second derivative jumps by 1 at 0), at most
    1 / 2 (a plain s^2 / 2 grows to 12.5 by t = 5, and g and S would then cancel each other in float32)."""
    return torch.tanh(torch.relu(s)) ** 2 / 2


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
        corner_singularity: build the hard constraint around :meth:`singular_part` (see :meth:`hard_constraint`).
            Off by default: it makes neurons off beta = 0, gamma = 1 about 4x more accurate, but the shipped
            GPT-PINN configs were measured without it (benchmarks/RESULTS.md, session 8).
    """

    input_names = ("x", "t")
    parameter_names = ("alpha", "beta", "gamma")
    grid_shape = (201, 201)
    hard_conditions = ("initial", "initial_velocity", "boundary")
    t_end = 5.0

    def __init__(self, alpha: float = -1.0, beta: float = 0.0, gamma: float = 1.0, n_pde: int = 4000,
                 n_initial: int = 256, n_boundary: int = 256, corner_singularity: bool = False) -> None:
        self.alpha = finite_float("KleinGordon", "alpha", alpha)
        if self.alpha >= 0:
            raise ValueError(f"KleinGordon: alpha must be < 0 (a wave equation with speed sqrt(-alpha)), "
                             f"got {alpha!r}")
        self.beta = finite_float("KleinGordon", "beta", beta)
        self.gamma = finite_float("KleinGordon", "gamma", gamma)
        self.n_pde = positive_int("KleinGordon", "n_pde", n_pde)
        self.n_initial = positive_int("KleinGordon", "n_initial", n_initial)
        self.n_boundary = positive_int("KleinGordon", "n_boundary", n_boundary)
        self.corner_singularity = boolean("KleinGordon", "corner_singularity", corner_singularity)
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

        return second_order_in_time_conditions(self, pde, initial, initial_velocity, boundary)

    def corner_jumps(self) -> tuple[float, float]:
        """The jumps of u_tt across the characteristics from the corners (-1, 0) and (1, 0): boundary data minus
        what the PDE gives there from u(x, 0) = x. u(-1, t) = -cos t asks u_tt(-1, 0) = 1 where the PDE gives
        2 + beta - gamma; u(1, t) = cos t asks -1 where it gives -(beta + gamma). Both vanish exactly when
        beta = 0 and gamma = 1 (u = x cos t for any alpha)."""
        return -(1.0 + self.beta - self.gamma), self.beta + self.gamma - 1.0

    def singular_part(self, x: Tensor) -> Tensor:
        """The part of the solution that is not smooth, (N, 1): the corner jumps carried along the characteristics
        and their reflections, as a sum of waves J f(t - d / c) with f(s) = tanh(max(s, 0))^2 / 2 (f''(0+) = 1)
        and c = sqrt(-alpha). Each wave solves u_tt + alpha u_xx = 0 exactly; the lower-order terms of the PDE are
        taken not to change a second-derivative jump along a characteristic (checked against the method-of-lines
        reference across the first characteristic; tested). Each reflected wave cancels the one before it on the
        wall it leaves. d is the distance travelled since the corner; waves that would start after t_end are
        left out. Zero at beta = 0, gamma = 1."""
        xs, t = x[:, :1], x[:, 1:2]
        left, right = self.corner_jumps()
        total = torch.zeros_like(t)
        if left == 0 and right == 0:
            return total
        speed = math.sqrt(-self.alpha)
        reflection = 0
        while 2 * reflection / speed < self.t_end:
            # even: waves still moving away from the corner they left; odd: reflected from the opposite wall
            from_left, from_right = (xs + 1, 1 - xs) if reflection % 2 == 0 else (1 - xs, xs + 1)
            delay = 2 * reflection / speed
            total = total + (-1) ** reflection * (left * _ramp(t - delay - from_left / speed)
                                                  + right * _ramp(t - delay - from_right / speed))
            reflection += 1
        return total

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        """u = x cos t + t^2 (1 - x^2) n: the t^2 factor keeps u_t(x, 0) = 0. (At beta = 0, gamma = 1 the lift
        x cos t is already the exact solution, so the network only has to learn n = 0 there.)

        With ``corner_singularity=True``: u = g + S + tanh(t)^2 (1 - x^2) n, where S is :meth:`singular_part` and
        the lift g = x cos t - ((1 - x) J_left + (1 + x) J_right) f(t) / 2 cancels S on x = ±1; tanh(t)^2 stays
        bounded, so late times do not dominate the residual. Without S the network has to produce a field that is
        singular at the corners: at (alpha, beta, gamma) = (-2, 1, 0) the exact n reaches 82 near (-1, 0)
        (|n| ~ 1 / t), against 0.87 with S subtracted. A neuron trained there is 2.7e-2 off instead of 8.4e-2
        (benchmarks/RESULTS.md, session 8)."""
        xs, t = x[:, :1], x[:, 1:2]
        if not self.corner_singularity:
            return xs * torch.cos(t) + t**2 * (1 - xs**2) * n
        left, right = self.corner_jumps()
        lift = xs * torch.cos(t) - ((1 - xs) * left + (1 + xs) * right) * _ramp(t) / 2
        return lift + self.singular_part(x) + torch.tanh(t) ** 2 * (1 - xs**2) * n

    def evaluation_grid(self) -> EvaluationGrid:
        if (self.alpha, self.beta, self.gamma) == EXACT_PARAMETERS:
            return super().evaluation_grid()
        from lightning_pde.reference.klein_gordon import klein_gordon_reference

        nx, nt = self.grid_shape
        ref = klein_gordon_reference(self.alpha, self.beta, self.gamma, nx=nx, nt=nt, t_end=self.t_end)
        points = self.domain.grid(self.grid_shape)
        values = torch.as_tensor(ref["u"], dtype=torch.float64).reshape(-1, 1)
        return EvaluationGrid(points, values, (nx, nt))
