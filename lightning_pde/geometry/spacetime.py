"""Space-time cylinders: a spatial geometry times a time interval, time the last input."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_pde.geometry.base import Geometry, Predicate, Proposal, as_points
from lightning_pde.geometry.primitives import Ball, Interval


class SpaceTime(Geometry):
    """The space-time cylinder ``space * time``; points are (x_1, ..., x_d, t).

    Its boundary here is the lateral surface, space's boundary x [t0, t1], where boundary conditions hold; the
    initial slice is drawn by :meth:`sample_initial`. `normal` is space's outward normal with a 0 time component.

    Args:
        space: the spatial geometry (not itself a cylinder).
        time: the time interval [t0, t1].
    """

    def __init__(self, space: Geometry, time: Interval) -> None:
        if not isinstance(space, Geometry) or isinstance(space, SpaceTime):
            raise ValueError(f"SpaceTime: space must be a spatial geometry (not a space-time cylinder), got {space!r}")
        if not isinstance(time, Interval):
            raise ValueError(f"SpaceTime: the time factor must be an Interval(t0, t1), got {time!r}")
        self.space, self.time = space, time
        self.t_lower, self.t_upper = time.a, time.b
        self.lower = torch.cat([space.lower, time.lower])
        self.upper = torch.cat([space.upper, time.upper])

    def __repr__(self) -> str:
        return f"({self.space!r} * {self.time!r})"

    @property
    def space_dim(self) -> int:
        return self.space.dim

    def _time(self, column: Tensor) -> Tensor:
        return self.time.lower + (self.time.upper - self.time.lower) * column

    def sample_initial(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform in space at t = t0, shape (n, space_dim + 1)."""
        x = self.space.sample(n, generator, method)
        return torch.cat([x, torch.full((len(x), 1), self.t_lower, dtype=torch.float64)], dim=1)

    def sample_boundary(self, n: int, generator: torch.Generator | None = None, method: str = "uniform",
                        where: Predicate | None = None) -> Tensor:
        """`n` points uniform on the lateral surface (space's boundary x [t0, t1]), shape (n, space_dim + 1);
        `where` sees whole (x, t) rows."""
        return super().sample_boundary(n, generator, method, where)

    def _interior_proposal(self) -> Proposal:
        # one cube for space and time together, so Sobol points stay low-discrepancy jointly
        space = self.space._interior_proposal()

        def propose(cube: Tensor) -> tuple[Tensor, None]:
            return torch.cat([space.propose(cube[:, :-1])[0], self._time(cube[:, -1:])], dim=1), None

        keep = None if space.keep is None else (lambda points, _: space.keep(points[:, :-1], None))
        return Proposal(space.columns + 1, propose, keep, space.rate)

    def _boundary_proposal(self) -> Proposal:
        space = self.space._boundary_proposal()

        def propose(cube: Tensor) -> tuple[Tensor, Tensor]:
            x, normals = space.propose(cube[:, :-1])
            zero = torch.zeros(len(cube), 1, dtype=torch.float64)
            return torch.cat([x, self._time(cube[:, -1:])], dim=1), torch.cat([normals, zero], dim=1)

        keep = None if space.keep is None else (lambda points, normals: space.keep(points[:, :-1], normals[:, :-1]))
        return Proposal(space.columns + 1, propose, keep, space.rate)

    def _boundary_measure(self) -> float:
        return self.space._boundary_measure() * (self.t_upper - self.t_lower)

    def _in_time(self, t: Tensor) -> Tensor:
        tol = self.time.tolerance
        return (t >= self.t_lower - tol) & (t <= self.t_upper + tol)

    def contains(self, points: Tensor) -> Tensor:
        """bool (N,): which points (N, space_dim + 1) lie in the closed cylinder."""
        x = as_points("SpaceTime.contains", points, self.dim)
        return self.space.contains(x[:, :-1]) & self._in_time(x[:, -1])

    def on_boundary(self, points: Tensor) -> Tensor:
        """bool (N,): which points lie on the lateral surface (space's `on_boundary`, t within [t0, t1])."""
        x = as_points("SpaceTime.on_boundary", points, self.dim)
        return self.space.on_boundary(x[:, :-1]) & self._in_time(x[:, -1])

    def normal(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, space_dim + 1) of the lateral surface: space's normal, 0 in time."""
        x = as_points("SpaceTime.normal", points, self.dim)
        return torch.cat([self.space.normal(x[:, :-1]), torch.zeros(len(x), 1, dtype=torch.float64)], dim=1)

    def _sdf(self, x: Tensor) -> Tensor:
        t = x[:, -1]
        return torch.maximum(self.space._sdf(x[:, :-1]), torch.maximum(self.t_lower - t, t - self.t_upper))

    def __mul__(self, other: object) -> Geometry:
        if isinstance(other, Geometry):
            raise ValueError(f"SpaceTime: {self!r} already has a time axis; it cannot be multiplied by {other!r}")
        return NotImplemented


class BallTime(SpaceTime):
    """The space-time cylinder Ball(dim, radius) x [t_lower, t_upper]; points are (x_1, ..., x_dim, t).

    `dim` is the number of inputs (space dimension + 1), as for :class:`Box`; `lower` and `upper` are the bounding
    box of the cylinder, length dim.

    Args:
        space_dim: dimension of the ball, an integer >= 1.
        radius: radius of the ball, > 0.
        t_lower: initial time.
        t_upper: final time, > t_lower.
    """

    def __init__(self, space_dim: int, radius: float = 1.0, t_lower: float = 0.0, t_upper: float = 1.0) -> None:
        ball = Ball(space_dim, radius)
        if not t_upper > t_lower:
            raise ValueError(f"BallTime: t_upper must exceed t_lower, got {t_lower} and {t_upper}")
        super().__init__(ball, Interval(t_lower, t_upper))
        self.ball = ball

    def __repr__(self) -> str:
        return f"BallTime({self.space_dim}, radius={self.ball.radius!r}, t_lower={self.t_lower!r}, " \
               f"t_upper={self.t_upper!r})"
