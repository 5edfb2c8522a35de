"""The 1-D wave equation of PINNacle's Wave1d-C task (Hao et al. 2024, arXiv 2306.08827; `src/pde/wave.py`,
class ``Wave1D``, of i207M/PINNacle at commit 6f8d69c), scored against its exact solution."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pde.problems.base import Condition, Problem, second_order_in_time_conditions
from lightning_pde.problems.domain import Box
from lightning_pde.validation import positive_int


class Wave1D(Problem):
    """u_tt = 4 u_xx on (x, t) in [0, 1]^2, with u(x, 0) and u(0, t), u(1, t) from the exact solution and
    u_t(x, 0) = 0; exact u = sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t) (PINNacle's Wave1d-C).

    Conditions, as PINNacle sets them: ``pde`` (u_tt - 4 u_xx), ``initial`` (u(x, 0) = sin(pi x) + 0.5 sin(4 pi x)),
    ``initial_velocity`` (u_t(x, 0) = 0) and ``boundary`` (u = 0 on x = 0 and x = 1, where the exact solution
    vanishes). The solution has two periods in x and four in t: plain PINNs stall at L2RE about 0.6 (PINNacle).

    Args:
        n_pde: default number of interior collocation points per step.
        n_initial: default number of points on t = 0, for each of ``initial`` and ``initial_velocity``.
        n_boundary: default number of points on x = 0 and x = 1 together.
    """

    input_names = ("x", "t")
    grid_shape = (101, 101)
    hard_conditions = ("initial", "boundary")
    #: the wave speed: u_tt = c^2 u_xx
    speed = 2.0

    def __init__(self, n_pde: int = 4000, n_initial: int = 256, n_boundary: int = 256) -> None:
        self.n_pde = positive_int("Wave1D", "n_pde", n_pde)
        self.n_initial = positive_int("Wave1D", "n_initial", n_initial)
        self.n_boundary = positive_int("Wave1D", "n_boundary", n_boundary)
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    @staticmethod
    def initial_value(x: Tensor) -> Tensor:
        """u(x, 0) = sin(pi x) + 0.5 sin(4 pi x), same shape as x."""
        return torch.sin(math.pi * x) + 0.5 * torch.sin(4 * math.pi * x)

    def exact(self, x: Tensor) -> Tensor:
        xs, t = x[:, :1], x[:, 1:2]
        return (torch.sin(math.pi * xs) * torch.cos(2 * math.pi * t)
                + 0.5 * torch.sin(4 * math.pi * xs) * torch.cos(8 * math.pi * t))

    def conditions(self) -> dict[str, Condition]:
        c2 = self.speed**2

        def pde(f):
            return f["u_tt"] - c2 * f["u_xx"]

        def initial(f):
            return f["u"] - self.initial_value(f["x"])

        def initial_velocity(f):
            return f["u_t"]

        def boundary(f):
            return f["u"]

        return second_order_in_time_conditions(self, pde, initial, initial_velocity, boundary)

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        """u = u(x, 0) + 4 x (1 - x) t n: the initial value and the zero boundary values hold exactly; the initial
        velocity u_t(x, 0) = 4 x (1 - x) n(x, 0) stays a loss term. (A t^2 factor would make u_t(x, 0) = 0 exact too,
        but the network would then have to output (u - u(x, 0)) / t^2, about u_tt(x, 0) / 2, up to ~160 here.)"""
        xs, t = x[:, :1], x[:, 1:2]
        return self.initial_value(xs) + 4 * xs * (1 - xs) * t * n
