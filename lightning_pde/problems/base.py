"""The problem API: a PDE with its inputs, outputs, domain, named conditions and reference solution.

A problem holds physics only. It never touches an optimizer or a network: a condition's residual is a function of a
:class:`~lightning_pde.derivatives.Fields` object, which gives the network's outputs and their derivatives by name
(``f["u_xx"]``), whatever derivative engine computes them.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lightning_pde.problems.domain import Box
from lightning_pde.spec import Configurable

if TYPE_CHECKING:
    from lightning_pde.derivatives.base import Fields

CONDITION_KINDS = ("pde", "initial", "boundary", "periodic", "data")


@dataclass(frozen=True)
class Condition:
    """One term of the physics loss.

    Args:
        kind: one of ``pde``, ``initial``, ``boundary``, ``periodic``, ``data``.
        sample: ``sample(n, generator, method)`` draws `n` points, shape (n, n_inputs), float64.
        residual: ``residual(fields)`` returns the residual at the fields' points, shape (n,) or (n, k); the loss
            term is its mean square.
        n_points: default number of points per training step.
    """

    kind: str
    sample: Callable[[int, torch.Generator | None, str], Tensor]
    residual: Callable[["Fields"], Tensor]
    n_points: int

    def __post_init__(self) -> None:
        if self.kind not in CONDITION_KINDS:
            raise ValueError(f"Condition: kind must be one of {CONDITION_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class EvaluationGrid:
    """Points where a solution is scored, with the solution there.

    Attributes:
        points: (N, n_inputs) float64, in ``problem.input_names`` order.
        values: (N, n_outputs) float64 exact or reference solution.
        shape: grid shape with prod(shape) == N ('ij' ordering), for plots; () for scattered points.
    """

    points: Tensor
    values: Tensor
    shape: tuple[int, ...]


class Problem(Configurable):
    """Base class of every PDE problem.

    Subclasses set `input_names`, `output_names` (default ``("u",)``), `parameter_names` and a `domain`, and
    implement :meth:`conditions`; they give either :meth:`exact` or override :meth:`evaluation_grid` with a
    reference solution. Invalid constructor arguments raise `ValueError` naming the argument.
    """

    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ("u",)
    parameter_names: tuple[str, ...] = ()
    #: default evaluation grid resolution per input, used with :meth:`exact`; () for scattered points instead
    grid_shape: tuple[int, ...] = ()
    #: number of scattered evaluation points (seeded, drawn from the domain) when `grid_shape` is ()
    n_evaluation: int = 10000
    #: inputs in which the solution is periodic, with their periods, e.g. ``{"x": 2.0}``
    periodic_inputs: dict[str, float] = {}
    #: conditions that :meth:`hard_constraint` satisfies exactly (dropped from the loss when it is used)
    hard_conditions: tuple[str, ...] = ()
    domain: Box

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    @property
    def parameters(self) -> dict[str, float]:
        """Current values of the problem's parameters, e.g. ``{"nu": 0.0032}``."""
        return {name: getattr(self, name) for name in self.parameter_names}

    @abstractmethod
    def conditions(self) -> dict[str, Condition]:
        """The named loss terms, e.g. ``{"pde": ..., "initial": ..., "boundary": ...}``."""

    def exact(self, x: Tensor) -> Tensor | None:
        """The exact solution at `x` (N, n_inputs), shape (N, n_outputs); None where none is known."""
        return None

    def hard_constraint(self, x: Tensor, n: Tensor) -> Tensor:
        """Output transform u = g(x) + d(x) n(x) that satisfies :attr:`hard_conditions` exactly for any network
        output n (Lagaris et al. 1998; Lu et al. 2021, arXiv 2102.04626). x (N, n_inputs), n (N, n_outputs)."""
        raise NotImplementedError(f"{self.name} has no hard-constraint output transform")

    @property
    def has_reference(self) -> bool:
        return type(self).exact is not Problem.exact or type(self).evaluation_grid is not Problem.evaluation_grid

    def evaluation_grid(self) -> EvaluationGrid:
        """Where and against what the solution is scored. Default: the exact solution on `grid_shape`, or at
        `n_evaluation` points drawn from the domain with a fixed seed when there is no grid (high dimensions)."""
        if self.grid_shape:
            points = self.domain.grid(self.grid_shape)
        else:
            points = self.domain.sample(self.n_evaluation, torch.Generator().manual_seed(0))
        values = self.exact(points)
        if values is None:
            raise NotImplementedError(f"{self.name} has neither an exact solution nor a reference solver")
        return EvaluationGrid(points, values.reshape(len(points), -1), tuple(self.grid_shape))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.init_args.items())
        return f"{self.name}({args})"

