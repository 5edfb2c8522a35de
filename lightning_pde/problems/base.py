"""The problem API: a PDE with its inputs, outputs, domain, named conditions and reference solution.

A problem holds physics only. It never touches an optimizer or a network: a condition's residual is a function of a
:class:`~lightning_pde.derivatives.Fields` object, which gives the network's outputs and their derivatives by name
(``f["u_xx"]``), whatever derivative engine computes them.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

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
        n_values: number of observed values that `sample` appends to each point's coordinates, shape
            (n, n_inputs + n_values): rows keep a point and its targets together through sampling and DDP sharding;
            the module splits them off and the residual reads them as ``f.values`` (:class:`PointData`).
    """

    kind: str
    sample: Callable[[int, torch.Generator | None, str], Tensor]
    residual: Callable[["Fields"], Tensor]
    n_points: int
    n_values: int = 0

    def __post_init__(self) -> None:
        if self.kind not in CONDITION_KINDS:
            raise ValueError(f"Condition: kind must be one of {CONDITION_KINDS}, got {self.kind!r}")

    def split(self, rows: Tensor) -> tuple[Tensor, Tensor | None]:
        """Sampled rows (n, n_inputs + n_values) -> (points (n, n_inputs), values (n, n_values) or None)."""
        if not self.n_values:
            return rows, None
        return rows[:, :-self.n_values], rows[:, -self.n_values:]


class PointData(Condition):
    """Observations of some outputs at given points: a condition of kind ``data`` whose loss is the mean square of
    prediction minus observation. Each sampled row carries its point and its values together, so sampling and DDP
    sharding keep them paired.

    Args:
        points: (n, n_inputs) observation points, in the problem's input order.
        values: (n, k) observed values (or (n,) for k = 1), one column per name in `outputs`.
        outputs: the observed outputs, e.g. ``("u",)`` or ``("u", "v")``.
        n_points: points per training step; default all of them (fewer: a seeded random subset each sampling).
    """

    def __init__(self, points: Tensor, values: Tensor, outputs: Sequence[str] = ("u",),
                 n_points: int | None = None) -> None:
        points = torch.as_tensor(points, dtype=torch.float64)
        values = torch.as_tensor(values, dtype=torch.float64)
        values = values[:, None] if values.ndim == 1 else values
        outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        if points.ndim != 2 or len(points) < 1:
            raise ValueError(f"PointData: points must have shape (n, n_inputs) with n >= 1, got {tuple(points.shape)}")
        if values.ndim != 2 or values.shape != (len(points), len(outputs)):
            raise ValueError(f"PointData: values must have shape (n, len(outputs)) = ({len(points)}, {len(outputs)}) "
                             f"for outputs {outputs}, got {tuple(values.shape)}")
        if not bool(torch.isfinite(points).all() and torch.isfinite(values).all()):
            raise ValueError("PointData: points and values must be finite (found nan or inf)")
        n_points = len(points) if n_points is None else n_points
        if isinstance(n_points, bool) or not isinstance(n_points, int) or not 1 <= n_points <= len(points):
            raise ValueError(f"PointData: n_points must be an integer in [1, {len(points)}], got {n_points!r}")
        rows = torch.cat([points, values], dim=1)

        def sample(n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
            if n > len(rows):
                raise ValueError(f"PointData: asked for {n} points, but there are {len(rows)} observations")
            if n == len(rows):
                return rows.clone()
            return rows[torch.randperm(len(rows), generator=generator)[:n]]

        def residual(f: "Fields") -> Tensor:
            if f.values is None:
                raise ValueError("PointData: the fields carry no observed values (build them through the module)")
            return torch.stack([f[name] for name in outputs], dim=1) - f.values

        super().__init__("data", sample, residual, n_points, n_values=len(outputs))
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "outputs", outputs)


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
    #: unknown constants of an inverse problem with their initial values, e.g. ``{"nu": 0.05}``: trained with the
    #: network, read in residuals as ``f.unknown("nu")``
    unknowns: dict[str, float] = {}
    #: any geometry of :mod:`lightning_pde.geometry` (a Box, a square with holes, a space-time cylinder, ...)
    domain: Any

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



def second_order_in_time_conditions(problem: "Problem", pde: Callable, initial: Callable, initial_velocity: Callable,
                                    boundary: Callable) -> dict[str, Condition]:
    """The conditions of an equation second order in time on a box (x, t) (wave, Klein-Gordon): the PDE inside, u and
    u_t at t = lower (both on the same initial line), and u on the two x faces. Counts are the problem's `n_pde`,
    `n_initial` and `n_boundary`; the dict's order is the sampling order."""
    domain = problem.domain

    def on_initial_line(n, g, m):
        return domain.sample_face(n, 1, "lower", g, m)

    sides = [(0, "lower"), (0, "upper")]
    return {
        "pde": Condition("pde", domain.sample, pde, problem.n_pde),
        "initial": Condition("initial", on_initial_line, initial, problem.n_initial),
        "initial_velocity": Condition("initial", on_initial_line, initial_velocity, problem.n_initial),
        "boundary": Condition("boundary", lambda n, g, m: domain.sample_faces(n, sides, g, m), boundary,
                              problem.n_boundary),
    }
