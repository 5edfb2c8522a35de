"""Union, difference and intersection of geometries (constructive solid geometry).

A composite keeps its primitives ("parts") with an orientation: +1, or -1 for a part subtracted an odd number of
times, whose outward normal points into it. Interior points come by rejection from the bounding box; boundary points
come from the parts' boundaries, each part drawn in proportion to its boundary measure, keeping the points where the
composite is inside on one side of the part's boundary and outside on the other: what is left is uniform by boundary
measure on the composite's boundary, and shared faces of touching parts, which are inside, are left out.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pde.geometry.base import PROBE_DISTANCE, Geometry, Proposal, as_points


class SetOperation(Geometry):
    """Common machinery of :class:`Union`, :class:`Difference` and :class:`Intersection`.

    Args:
        a: first geometry.
        b: second geometry, of the same dimension.
    """

    symbol = "?"

    def __init__(self, a: Geometry, b: Geometry) -> None:
        from lightning_pde.geometry.spacetime import SpaceTime

        name = type(self).__name__
        for label, g in (("a", a), ("b", b)):
            if not isinstance(g, Geometry):
                raise ValueError(f"{name}: {label} must be a geometry, got {g!r}")
            if isinstance(g, SpaceTime):
                raise ValueError(f"{name}: set operations take spatial geometries; combine them before multiplying by "
                                 f"a time Interval, got {g!r}")
        if a.dim != b.dim:
            raise ValueError(f"{name}: a {self.symbol} b needs geometries of the same dimension, got {a.dim} and "
                             f"{b.dim}")
        self.a, self.b = a, b
        self.parts: list[tuple[Geometry, float]] = self._parts()

    def __repr__(self) -> str:
        return f"({self.a!r} {self.symbol} {self.b!r})"

    def _parts(self) -> list[tuple[Geometry, float]]:
        return _parts(self.a) + _parts(self.b)

    @property
    def _probe(self) -> float:
        return PROBE_DISTANCE * self.diameter

    def _contains(self, x: Tensor) -> Tensor:
        return self._sdf(x) <= self.tolerance

    def _two_sided(self, x: Tensor, normals: Tensor) -> Tensor:
        """bool (N,): inside just behind the points and outside just ahead of them along `normals` (N, dim)."""
        step = self._probe * normals
        return self._contains(x - step) & ~self._contains(x + step)

    def _boundary_measure(self) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not know its boundary measure")

    def _interior_proposal(self) -> Proposal:
        return Proposal(self.dim, lambda cube: (self.lower + (self.upper - self.lower) * cube, None),
                        keep=lambda points, _: self._sdf(points) < 0, rate=0.5)

    def _boundary_proposal(self) -> Proposal:
        proposals = [part._boundary_proposal() for part, _ in self.parts]
        measures = torch.tensor([part._boundary_measure() for part, _ in self.parts], dtype=torch.float64)
        cumulative = measures.cumsum(0) / measures.sum()
        last = len(self.parts) - 1

        def propose(cube: Tensor) -> tuple[Tensor, Tensor]:
            # column 0 picks a part with probability proportional to its boundary measure
            which = torch.searchsorted(cumulative, cube[:, 0].contiguous(), right=True).clamp_max(last)
            points = torch.empty(len(cube), self.dim, dtype=torch.float64)
            normals = torch.empty_like(points)
            for k, ((_, sign), proposal) in enumerate(zip(self.parts, proposals)):
                rows = which == k
                if bool(rows.any()):
                    points[rows], part_normals = proposal.propose(cube[rows, 1:1 + proposal.columns])
                    normals[rows] = sign * part_normals
            return points, normals

        return Proposal(1 + max(p.columns for p in proposals), propose, keep=self._two_sided, rate=0.5)

    def on_boundary(self, points: Tensor) -> Tensor:
        """bool (N,): which points (N, dim) lie within `tolerance` of the boundary and have, within the probe
        distance, both points of the composite's interior and points outside it. So a face shared by touching parts
        (interior on both sides) and an edge left dangling by a flush cut (exterior on both sides) are not boundary.
        Probed along the axes, the diagonals (up to 3-D) and the nearby parts' normals."""
        x = as_points(f"{type(self).__name__}.on_boundary", points, self.dim)
        result = self._sdf(x).abs() <= self.tolerance
        near = x[result]
        directions = [torch.eye(self.dim, dtype=torch.float64)]
        if self.dim <= 3:
            corners = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=torch.float64)] * self.dim)
            directions.append(corners.reshape(-1, self.dim) / math.sqrt(self.dim))
        probes = [d.expand(len(near), self.dim) for d in torch.cat(directions)]
        probes += [part.normal(near) for part, _ in self.parts]
        inside = torch.zeros(len(near), dtype=torch.bool)
        outside = torch.zeros(len(near), dtype=torch.bool)
        for v in probes:
            for step in (self._probe * v, -self._probe * v):
                sdf = self._sdf(near + step)
                inside |= sdf < -self.tolerance
                outside |= sdf > self.tolerance
        result[result.clone()] = inside & outside
        return result

    def normal(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, dim): that of the part whose boundary the point is on (flipped for a subtracted
        part); for points on no part's boundary, that of the nearest part."""
        x = as_points(f"{type(self).__name__}.normal", points, self.dim)
        result = torch.zeros_like(x)
        assigned = torch.zeros(len(x), dtype=torch.bool)
        nearest = torch.full((len(x),), float("inf"), dtype=torch.float64)
        fallback = torch.zeros_like(x)
        for part, sign in self.parts:
            normals, distance = sign * part.normal(x), part._sdf(x).abs()
            take = (distance <= self.tolerance) & ~assigned & self._two_sided(x, normals)
            result[take], assigned = normals[take], assigned | take
            closer = distance < nearest
            fallback[closer], nearest = normals[closer], torch.where(closer, distance, nearest)
        return torch.where(assigned[:, None], result, fallback)


def _parts(g: Geometry) -> list[tuple[Geometry, float]]:
    return g.parts if isinstance(g, SetOperation) else [(g, 1.0)]


class Union(SetOperation):
    """The union ``a | b`` of two geometries of the same dimension.

    Args:
        a: first geometry.
        b: second geometry, of the same dimension.
    """

    symbol = "|"

    def __init__(self, a: Geometry, b: Geometry) -> None:
        super().__init__(a, b)
        self.lower = torch.minimum(a.lower, b.lower)
        self.upper = torch.maximum(a.upper, b.upper)

    def _sdf(self, x: Tensor) -> Tensor:
        return torch.minimum(self.a._sdf(x), self.b._sdf(x))


class Difference(SetOperation):
    """The difference ``a - b``: the points of `a` not inside `b` (b's boundary where it crosses `a` belongs to it).

    Args:
        a: geometry to cut from.
        b: geometry to cut away, of the same dimension.
    """

    symbol = "-"

    def __init__(self, a: Geometry, b: Geometry) -> None:
        super().__init__(a, b)
        self.lower, self.upper = a.lower.clone(), a.upper.clone()

    def _parts(self) -> list[tuple[Geometry, float]]:
        return _parts(self.a) + [(part, -sign) for part, sign in _parts(self.b)]

    def _sdf(self, x: Tensor) -> Tensor:
        return torch.maximum(self.a._sdf(x), -self.b._sdf(x))


class Intersection(SetOperation):
    """The intersection ``a & b`` of two geometries of the same dimension.

    Args:
        a: first geometry.
        b: second geometry, of the same dimension, whose bounding box must overlap a's.
    """

    symbol = "&"

    def __init__(self, a: Geometry, b: Geometry) -> None:
        super().__init__(a, b)
        self.lower = torch.maximum(a.lower, b.lower)
        self.upper = torch.minimum(a.upper, b.upper)
        if not bool((self.upper > self.lower).all()):
            raise ValueError(f"Intersection: a & b is empty, the bounding boxes of {a!r} and {b!r} do not overlap")

    def _sdf(self, x: Tensor) -> Tensor:
        return torch.maximum(self.a._sdf(x), self.b._sdf(x))
