"""The geometry protocol and the seeded samplers every geometry shares.

A geometry draws its points by mapping points of a unit cube (i.i.d. uniform or scrambled Sobol, from one stream) onto
a *proposal* and keeping those that pass its test; primitives map the cube onto themselves exactly and keep every
point, shapes built by set operations propose from their bounding box (interior) or from their parts' boundaries
(boundary) and reject. The first `n` kept points are returned, so the result depends only on the generator's state.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

SAMPLING_METHODS = ("uniform", "sobol")

#: `on_boundary` and `contains` accept points within this fraction of the bounding box's diagonal of the boundary.
BOUNDARY_TOLERANCE = 1e-9
#: Set operations decide which side of a part's boundary is inside by probing this fraction of the diagonal away.
PROBE_DISTANCE = 1e-6
#: A rejection sampler gives up after max(MIN_CANDIDATES, CANDIDATES_PER_POINT * n) candidates: a `where` that selects
#: nothing, or a shape with (almost) no volume in its bounding box, is an error instead of a hang.
CANDIDATES_PER_POINT = 1000
MIN_CANDIDATES = 2**20
_MAX_BATCH = 2**18

Predicate = Callable[[Tensor], Tensor]


def unit_cube(n: int, dim: int, generator: torch.Generator | None, method: str = "uniform") -> Tensor:
    """`n` points in [0, 1]^dim, shape (n, dim), float64: i.i.d. uniform or scrambled Sobol."""
    if method == "uniform":
        return torch.rand(n, dim, generator=generator, dtype=torch.float64)
    if method == "sobol":
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        return torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed).draw(n, dtype=torch.float64)
    raise ValueError(f"sampling method must be one of {SAMPLING_METHODS}, got {method!r}")


class _CubeStream:
    """Successive points of [0, 1)^columns from one stream, so a rejection sampler that needs more candidates
    continues the same i.i.d. or Sobol sequence. Its first ``draw(n)`` equals ``unit_cube(n, columns, ...)``."""

    def __init__(self, what: str, columns: int, generator: torch.Generator | None, method: str) -> None:
        if method not in SAMPLING_METHODS:
            raise ValueError(f"{what}: method must be one of {SAMPLING_METHODS}, got {method!r}")
        self.columns, self.generator, self.method = columns, generator, method
        if method == "sobol":
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            self.engine = torch.quasirandom.SobolEngine(columns, scramble=True, seed=seed)

    def draw(self, n: int) -> Tensor:
        if self.method == "uniform":
            return torch.rand(n, self.columns, generator=self.generator, dtype=torch.float64)
        if n == 0:  # SobolEngine.draw(0) fails
            return torch.empty(0, self.columns, dtype=torch.float64)
        return self.engine.draw(n, dtype=torch.float64)


@dataclass(frozen=True)
class Proposal:
    """How a geometry draws candidate points: `propose` maps cube points (N, columns) to points (N, dim) and, for
    boundaries, their outward unit normals (N, dim) (else None); `keep(points, normals)` -> bool (N,) says which
    candidates are kept (None: all); `rate` is the expected kept fraction, which sizes the first batch."""

    columns: int
    propose: Callable[[Tensor], tuple[Tensor, Tensor | None]]
    keep: Callable[[Tensor, Tensor | None], Tensor] | None = None
    rate: float = 1.0


def count_argument(what: str, n: object) -> int:
    """`n` as an int >= 0, or a ValueError naming it."""
    try:
        if isinstance(n, bool):
            raise TypeError
        value = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{what}: n must be an integer >= 0, got {n!r}") from None
    if value < 0:
        raise ValueError(f"{what}: n must be an integer >= 0, got {n!r}")
    return value


def _where_mask(what: str, where: Predicate, points: Tensor) -> Tensor:
    mask = where(points)
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (len(points),):
        got = f"{mask.dtype} tensor of shape {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"{what}: where(points) must return a bool tensor of shape ({len(points)},), got {got}")
    return mask


def draw(what: str, n: int, proposal: Proposal, generator: torch.Generator | None, method: str,
         where: Predicate | None = None) -> Tensor:
    """The first `n` candidates of `proposal` that it keeps and `where` accepts, shape (n, dim).

    Candidates are exchangeable (i.i.d.) or a low-discrepancy sequence, so the first `n` kept ones are uniform on the
    kept set (rejection sampling). Raises a ValueError after a bounded number of candidates.
    """
    stream = _CubeStream(what, proposal.columns, generator, method)
    if proposal.keep is None and where is None:
        return proposal.propose(stream.draw(n))[0]
    budget = max(MIN_CANDIDATES, CANDIDATES_PER_POINT * n)
    kept: list[Tensor] = []
    found = drawn = 0
    rate = proposal.rate
    while True:
        # 10 % more than the expected need (plus a few) so that one batch usually suffices
        batch = max(1, min(_MAX_BATCH, budget - drawn, math.ceil((n - found) / rate * 1.1) + 64))
        points, normals = proposal.propose(stream.draw(batch))
        mask = torch.ones(len(points), dtype=torch.bool) if proposal.keep is None else proposal.keep(points, normals)
        if where is not None and bool(mask.any()):
            mask[mask.clone()] = _where_mask(what, where, points[mask])
        kept.append(points[mask])
        found += int(mask.sum())
        drawn += batch
        if found >= n:
            return torch.cat(kept)[:n]
        if drawn >= budget:
            cause = ("`where` selects (almost) none of the boundary" if where is not None
                     else "the shape fills (almost) none of its bounding box")
            raise ValueError(f"{what}: only {found} of {drawn} candidate points were kept, {n} were asked for; "
                             f"{cause}")
        rate = max(found / drawn, 1.0 / budget)


def as_points(what: str, points: object, dim: int) -> Tensor:
    """`points` as a float64 CPU tensor (N, dim), or a ValueError naming its shape."""
    x = torch.as_tensor(points, dtype=torch.float64, device="cpu")
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what}: points must have shape (N, {dim}), got {tuple(x.shape)}")
    return x


class Geometry:
    """A closed set in R^dim that can be sampled, inside and on its boundary, and knows its outward normals.

    Subclasses set `lower` and `upper` (float64 bounding box, shape (dim,); the PINN normalises its inputs with them)
    and implement `_sdf`, `normal`, `_interior_proposal` and `_boundary_proposal`. Geometries combine with ``|``
    (union), ``-`` (difference) and ``&`` (intersection), and ``geometry * Interval(t0, t1)`` is a space-time cylinder.
    """

    lower: Tensor
    upper: Tensor

    @property
    def dim(self) -> int:
        return self.lower.numel()

    @property
    def diameter(self) -> float:
        """Length of the bounding box's diagonal; tolerances are relative to it."""
        return float(torch.linalg.vector_norm(self.upper - self.lower))

    @property
    def tolerance(self) -> float:
        """Distance from the boundary within which `on_boundary` holds: BOUNDARY_TOLERANCE x `diameter`."""
        return BOUNDARY_TOLERANCE * self.diameter

    # -- sampling ---------------------------------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform (by volume) in the interior, shape (n, dim), float64."""
        what = f"{type(self).__name__}.sample"
        return draw(what, count_argument(what, n), self._interior_proposal(), generator, method)

    def sample_boundary(self, n: int, generator: torch.Generator | None = None, method: str = "uniform",
                        where: Predicate | None = None) -> Tensor:
        """`n` points on the boundary, uniform by boundary measure, shape (n, dim), float64; with `where`, only
        points where ``where(points)`` (a bool tensor (N,)) holds, i.e. uniform on that part of the boundary."""
        what = f"{type(self).__name__}.sample_boundary"
        if where is not None and not callable(where):
            raise ValueError(f"{what}: where must be a function points -> bool tensor (N,) or None, got {where!r}")
        return draw(what, count_argument(what, n), self._boundary_proposal(), generator, method, where)

    # -- geometry ---------------------------------------------------------------------------------------------------
    def contains(self, points: Tensor) -> Tensor:
        """bool (N,): which points (N, dim) lie in the closed set (boundary included, within `tolerance`)."""
        return self._sdf(as_points(f"{type(self).__name__}.contains", points, self.dim)) <= self.tolerance

    def on_boundary(self, points: Tensor) -> Tensor:
        """bool (N,): which points (N, dim) lie within `tolerance` of the boundary."""
        return self._sdf(as_points(f"{type(self).__name__}.on_boundary", points, self.dim)).abs() <= self.tolerance

    def normal(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, dim) at boundary points (N, dim)."""
        raise NotImplementedError

    def _sdf(self, x: Tensor) -> Tensor:
        """Signed distance-like function (N,): < 0 inside, 0 on the boundary, > 0 outside."""
        raise NotImplementedError

    def _interior_proposal(self) -> Proposal:
        raise NotImplementedError

    def _boundary_proposal(self) -> Proposal:
        raise NotImplementedError

    def _boundary_measure(self) -> float:
        """Length, area, ... of the boundary (the number of end points in 1-D); set operations split by it."""
        raise NotImplementedError

    # -- set operations and space-time --------------------------------------------------------------------------------
    def __or__(self, other: object) -> Geometry:
        from lightning_pde.geometry.csg import Union

        return Union(self, other) if isinstance(other, Geometry) else NotImplemented

    def __sub__(self, other: object) -> Geometry:
        from lightning_pde.geometry.csg import Difference

        return Difference(self, other) if isinstance(other, Geometry) else NotImplemented

    def __and__(self, other: object) -> Geometry:
        from lightning_pde.geometry.csg import Intersection

        return Intersection(self, other) if isinstance(other, Geometry) else NotImplemented

    def __mul__(self, other: object) -> Geometry:
        from lightning_pde.geometry.spacetime import SpaceTime

        return SpaceTime(self, other) if isinstance(other, Geometry) else NotImplemented
