"""Primitive shapes: intervals and boxes, balls and disks, polygons. Each maps points of a unit cube onto its interior
and onto its boundary so that uniform cube points become uniform points by volume and by boundary measure."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_pde.geometry.base import Geometry, Proposal, as_points


def _finite_vector(what: str, name: str, value: object) -> Tensor:
    """`value` as a non-empty finite float64 vector, or a ValueError naming `name`."""
    try:
        x = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{what}: {name} must be a sequence of finite numbers, got {value!r}") from None
    if x.ndim != 1 or x.numel() < 1 or not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what}: {name} must be a non-empty sequence of finite numbers, got {value!r}")
    return x


def _finite_number(what: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what}: {name} must be a finite number, got {value!r}")
    return float(value)


class Box(Geometry):
    """The axis-aligned box [lower_0, upper_0] x ... x [lower_{d-1}, upper_{d-1}]; `Rectangle` is the same class.

    Args:
        lower: lower corner, one value per input.
        upper: upper corner, one value per input; each must exceed `lower`.
    """

    def __init__(self, lower: Sequence[float], upper: Sequence[float]) -> None:
        name = type(self).__name__
        if len(lower) != len(upper) or len(lower) < 1:
            raise ValueError(f"{name}: lower and upper need the same length >= 1, got {len(lower)} and {len(upper)}")
        self.lower = _finite_vector(name, "lower", lower)
        self.upper = _finite_vector(name, "upper", upper)
        if not bool((self.upper > self.lower).all()):
            raise ValueError(f"{name}: upper must exceed lower in every dimension, got {lower} and {upper}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower={self.lower.tolist()}, upper={self.upper.tolist()})"

    def sample_face(self, n: int, axis: int, side: str, generator: torch.Generator | None = None,
                    method: str = "uniform") -> Tensor:
        """`n` points on the face where input `axis` is at its ``"lower"`` or ``"upper"`` end, shape (n, dim)."""
        points = self.sample(n, generator, method)
        points[:, axis] = (self.lower if side == "lower" else self.upper)[axis]
        return points

    def sample_faces(self, n: int, faces: Sequence[tuple[int, str]], generator: torch.Generator | None = None,
                     method: str = "uniform") -> Tensor:
        """`n` points spread over several faces in proportion to their areas, shape (n, dim)."""
        extent = self.upper - self.lower
        areas = torch.tensor([float(extent.prod() / extent[axis]) for axis, _ in faces], dtype=torch.float64)
        # Even split by area with the remainder handed out in order: deterministic, unlike multinomial draws.
        counts = torch.floor(n * areas / areas.sum()).long()
        counts[: n - int(counts.sum())] += 1
        return torch.cat([self.sample_face(int(c), axis, side, generator, method)
                          for c, (axis, side) in zip(counts, faces)])

    def grid(self, shape: Sequence[int]) -> Tensor:
        """Tensor-product grid including the end points, shape (prod(shape), dim), 'ij' ordering (last axis fastest)."""
        axes = [torch.linspace(float(lo), float(hi), int(s), dtype=torch.float64)
                for lo, hi, s in zip(self.lower, self.upper, shape)]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dim)

    def _face_areas(self) -> Tensor:
        """Areas of the 2 dim faces, ordered (axis 0 lower, axis 0 upper, axis 1 lower, ...); 1 each in 1-D."""
        extent = self.upper - self.lower
        areas = torch.stack([extent.prod() / extent[axis] for axis in range(self.dim)])
        return areas.repeat_interleave(2)

    def _boundary_measure(self) -> float:
        return float(self._face_areas().sum())

    def _interior_proposal(self) -> Proposal:
        return Proposal(self.dim, lambda cube: (self.lower + (self.upper - self.lower) * cube, None))

    def _boundary_proposal(self) -> Proposal:
        dim = self.dim
        cumulative = self._face_areas().cumsum(0)
        cumulative = cumulative / cumulative[-1]

        def propose(cube: Tensor) -> tuple[Tensor, Tensor]:
            # column 0 picks a face with probability proportional to its area, the others place the point on it
            face = torch.searchsorted(cumulative, cube[:, 0].contiguous(), right=True).clamp_max(2 * dim - 1)
            axis, upper_side = face // 2, face % 2 == 1
            rows = torch.arange(len(cube))
            if dim > 1:
                columns = torch.arange(dim).expand(len(cube), dim)
                # the free coordinates fill the axes other than `axis` in order
                index = (columns - (columns > axis[:, None]).long()).clamp_max(dim - 2)
                points = self.lower + (self.upper - self.lower) * cube[:, 1:].gather(1, index)
            else:
                points = self.lower.expand(len(cube), 1).clone()
            points[rows, axis] = torch.where(upper_side, self.upper[axis], self.lower[axis])
            normals = torch.zeros(len(cube), dim, dtype=torch.float64)
            normals[rows, axis] = torch.where(upper_side, 1.0, -1.0).to(torch.float64)
            return points, normals

        return Proposal(dim, propose)

    def _sdf(self, x: Tensor) -> Tensor:
        q = torch.maximum(self.lower - x, x - self.upper)  # > 0 on an axis where x lies outside the slab
        return torch.linalg.vector_norm(q.clamp_min(0), dim=1) + q.max(dim=1).values.clamp_max(0)

    def normal(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, dim) of the nearest face (the first of them at edges and corners)."""
        x = as_points(f"{type(self).__name__}.normal", points, self.dim)
        distance = torch.stack([(x - self.lower).abs(), (x - self.upper).abs()], dim=2).reshape(len(x), 2 * self.dim)
        face = distance.argmin(dim=1)
        normals = torch.zeros_like(x)
        normals[torch.arange(len(x)), face // 2] = torch.where(face % 2 == 1, 1.0, -1.0).to(torch.float64)
        return normals


Rectangle = Box


class Interval(Box):
    """The closed interval [a, b], a 1-D :class:`Box`; ``geometry * Interval(t0, t1)`` makes time the last input.

    Args:
        a: left end.
        b: right end, > a.
    """

    def __init__(self, a: float, b: float) -> None:
        self.a = _finite_number("Interval", "a", a)
        self.b = _finite_number("Interval", "b", b)
        if not self.b > self.a:
            raise ValueError(f"Interval: b must exceed a, got a={a!r} and b={b!r}")
        super().__init__([self.a], [self.b])

    def __repr__(self) -> str:
        return f"Interval({self.a!r}, {self.b!r})"


def _standard_normal(cube: Tensor) -> Tensor:
    """Map points of [0, 1)^k to standard normal samples by the inverse CDF, shape unchanged.

    Going through the cube (instead of `torch.randn`) lets the same code serve i.i.d. uniform and Sobol points.
    """
    # rand can return exactly 0, where the inverse CDF is -inf.
    tiny = torch.finfo(torch.float64).tiny
    return torch.special.ndtri(cube.clamp(tiny, 1 - 2.0**-53))


def sphere_from_cube(cube: Tensor, radius: float = 1.0) -> Tensor:
    """Uniform points on the sphere |x| = radius in R^dim from points of [0, 1)^dim, shape (n, dim).

    Normalised standard Gaussian vectors are uniform on the sphere (Muller 1959).
    """
    normal = _standard_normal(cube)
    norm = torch.linalg.vector_norm(normal, dim=1, keepdim=True)
    # A zero vector has no direction (probability zero, but possible in floating point): send it to e_1.
    e1 = torch.zeros(1, normal.shape[1], dtype=normal.dtype)  # (not normal[:1], which is empty when n = 0)
    e1[0, 0] = 1.0
    direction = torch.where(norm > 0, normal / norm.clamp_min(torch.finfo(torch.float64).tiny), e1)
    return radius * direction


def ball_from_cube(cube: Tensor, radius: float = 1.0) -> Tensor:
    """Uniform points in the ball |x| <= radius in R^dim from points of [0, 1)^(dim + 1), shape (n, dim).

    The first `dim` columns give the direction (:func:`sphere_from_cube`), the last the radius
    r = radius U^(1/dim): the volume within r grows as r^dim, so this r has the right distribution.
    """
    dim = cube.shape[1] - 1
    return sphere_from_cube(cube[:, :dim]) * (radius * cube[:, dim:] ** (1.0 / dim))


class Ball(Geometry):
    """The closed ball {x in R^dim : |x - center| <= radius}.

    ``Ball(dim, radius)`` with an integer `dim` is the ball centred at the origin of R^dim. `lower` and `upper` are
    its bounding box, which input normalisation uses.

    Args:
        center: the centre, one value per dimension, or an integer dim >= 1 for the origin of R^dim.
        radius: radius, > 0.
    """

    def __init__(self, center: Sequence[float] | int, radius: float = 1.0) -> None:
        name = type(self).__name__
        if isinstance(center, numbers.Integral) and not isinstance(center, bool):
            center = int(center)
            if center < 1:
                raise ValueError(f"{name}: dim must be an integer >= 1, got {center!r}")
            self.center = torch.zeros(center, dtype=torch.float64)
        elif isinstance(center, (bool, float)):
            raise ValueError(f"{name}: center must be a sequence of coordinates (or an integer dim), got {center!r}")
        else:
            self.center = _finite_vector(name, "center", center)
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 < radius < float("inf"):
            raise ValueError(f"{name}: radius must be a finite number > 0, got {radius!r}")
        self.radius = float(radius)
        self.lower = self.center - self.radius
        self.upper = self.center + self.radius
        # adding a zero centre would still flip -0.0 to 0.0: skip it so origin balls keep their exact points
        self._at_origin = not bool(self.center.any())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(center={self.center.tolist()}, radius={self.radius!r})"

    def _shift(self, x: Tensor) -> Tensor:
        return x if self._at_origin else x + self.center

    def sample_sphere(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform on the bounding sphere |x - center| = radius, shape (n, dim); = `sample_boundary`."""
        return self.sample_boundary(n, generator, method)

    def _boundary_measure(self) -> float:
        # surface of the sphere: 2 pi^(d/2) r^(d-1) / Gamma(d/2), in logs so that high dimensions do not overflow
        d = self.dim
        return math.exp(math.log(2) + d / 2 * math.log(math.pi) + (d - 1) * math.log(self.radius) - math.lgamma(d / 2))

    def _interior_proposal(self) -> Proposal:
        return Proposal(self.dim + 1, lambda cube: (self._shift(ball_from_cube(cube, self.radius)), None))

    def _boundary_proposal(self) -> Proposal:
        def propose(cube: Tensor) -> tuple[Tensor, Tensor]:
            direction = sphere_from_cube(cube)
            return self._shift(self.radius * direction), direction

        return Proposal(self.dim, propose)

    def _sdf(self, x: Tensor) -> Tensor:
        return torch.linalg.vector_norm(x - self.center, dim=1) - self.radius

    def normal(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, dim), (x - center) / |x - center| (e_1 at the centre)."""
        x = as_points(f"{type(self).__name__}.normal", points, self.dim) - self.center
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        e1 = torch.zeros(1, self.dim, dtype=torch.float64)
        e1[0, 0] = 1.0
        return torch.where(norm > 0, x / norm.clamp_min(torch.finfo(torch.float64).tiny), e1)


class Disk(Ball):
    """The closed disk {x in R^2 : |x - center| <= radius}, a 2-D :class:`Ball`.

    Args:
        center: the centre, two coordinates.
        radius: radius, > 0.
    """

    def __init__(self, center: Sequence[float], radius: float = 1.0) -> None:
        if isinstance(center, (bool, int, float)) or len(center) != 2:
            raise ValueError(f"Disk: center must have 2 coordinates, got {center!r}")
        super().__init__(center, radius)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """z-component of the cross product of 2-D vectors (..., 2)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


class Polygon(Geometry):
    """A closed simple polygon in the plane, its vertices given in order (either orientation; repeating the first
    vertex at the end is allowed). Interior points are drawn by rejection from the bounding box, boundary points by
    arc length.

    Args:
        vertices: (m, 2) coordinates, m >= 3; edges must not cross or touch except neighbours at their shared vertex.
    """

    def __init__(self, vertices: Sequence[Sequence[float]]) -> None:
        try:
            v = torch.as_tensor(vertices, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"Polygon: vertices must be an (m, 2) array of finite numbers, got {vertices!r}") from None
        if v.ndim != 2 or v.shape[1] != 2 or not bool(torch.isfinite(v).all()):
            raise ValueError(f"Polygon: vertices must be an (m, 2) array of finite numbers, got {vertices!r}")
        if len(v) > 3 and torch.equal(v[0], v[-1]):
            v = v[:-1]
        if len(v) < 3:
            raise ValueError(f"Polygon: vertices must give at least 3 points, got {len(v)}")
        self.vertices = v
        self.lower, self.upper = v.min(dim=0).values, v.max(dim=0).values
        edges = v.roll(-1, dims=0) - v
        self._lengths = torch.linalg.vector_norm(edges, dim=1)
        scale = self.diameter
        if not bool((self.upper > self.lower).all()):
            raise ValueError(f"Polygon: vertices must not all lie on a line, got {v.tolist()}")
        if not bool((self._lengths > 1e-12 * scale).all()):
            raise ValueError(f"Polygon: vertices must not repeat one after the other, got {v.tolist()}")
        self._check_simple(edges, scale)
        self._signed_area = 0.5 * float(_cross(v, v.roll(-1, dims=0)).sum())
        if abs(self._signed_area) <= 1e-12 * scale**2:
            raise ValueError(f"Polygon: vertices enclose zero area, got {v.tolist()}")
        # outward normal of edge (dx, dy): (dy, -dx) / length for counter-clockwise vertices, the opposite otherwise
        turn = 1.0 if self._signed_area > 0 else -1.0
        self._edge_normals = turn * torch.stack([edges[:, 1], -edges[:, 0]], dim=1) / self._lengths[:, None]

    def __repr__(self) -> str:
        return f"Polygon({self.vertices.tolist()})"

    def _check_simple(self, edges: Tensor, scale: float) -> None:
        v, m = self.vertices, len(self.vertices)
        eps = 1e-12 * scale**2
        # neighbouring edges may only meet at their shared vertex: folding back along the same line overlaps them
        following = edges.roll(-1, dims=0)
        fold = (_cross(edges, following).abs() <= eps) & ((edges * following).sum(dim=1) < 0)
        if bool(fold.any()):
            k = int(fold.nonzero()[0])
            raise ValueError(f"Polygon: vertices must form a simple polygon; edges {k} and {(k + 1) % m} fold back on "
                             f"each other at vertex {(k + 1) % m} {v[(k + 1) % m].tolist()}")
        i, j = torch.triu_indices(m, m, offset=2)
        keep = ~((i == 0) & (j == m - 1))  # the first and last edges are neighbours too
        i, j = i[keep], j[keep]
        p1, p2, q1, q2 = v[i], v[(i + 1) % m], v[j], v[(j + 1) % m]
        d1, d2 = _cross(q2 - q1, p1 - q1), _cross(q2 - q1, p2 - q1)
        d3, d4 = _cross(p2 - p1, q1 - p1), _cross(p2 - p1, q2 - p1)
        proper = (d1 * d2 < 0) & (d3 * d4 < 0) & (d1.abs() > eps) & (d2.abs() > eps) & (d3.abs() > eps) & \
            (d4.abs() > eps)

        def between(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
            tol = 1e-12 * scale
            return ((c >= torch.minimum(a, b) - tol) & (c <= torch.maximum(a, b) + tol)).all(dim=1)

        touching = (((d1.abs() <= eps) & between(q1, q2, p1)) | ((d2.abs() <= eps) & between(q1, q2, p2))
                    | ((d3.abs() <= eps) & between(p1, p2, q1)) | ((d4.abs() <= eps) & between(p1, p2, q2)))
        bad = proper | touching
        if bool(bad.any()):
            k = int(bad.nonzero()[0])
            raise ValueError(f"Polygon: vertices must form a simple polygon; edge {int(i[k])} {p1[k].tolist()}-"
                             f"{p2[k].tolist()} meets edge {int(j[k])} {q1[k].tolist()}-{q2[k].tolist()}")

    @property
    def area(self) -> float:
        return abs(self._signed_area)

    def _boundary_measure(self) -> float:
        return float(self._lengths.sum())

    def _inside(self, x: Tensor) -> Tensor:
        """Even-odd rule: a ray to +x crosses the boundary an odd number of times from inside, bool (N,)."""
        inside = torch.zeros(len(x), dtype=torch.bool)
        v = self.vertices
        for a, b in zip(v, v.roll(-1, dims=0)):
            spans = (a[1] > x[:, 1]) != (b[1] > x[:, 1])
            crossing = a[0] + (x[:, 1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1] + (b[1] == a[1]).double())
            inside ^= spans & (x[:, 0] < crossing)
        return inside

    def _edge_distances(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Distance (N,) to the boundary and the index (N,) of the nearest edge (the first of equally near ones)."""
        best = torch.full((len(x),), float("inf"), dtype=torch.float64)
        nearest = torch.zeros(len(x), dtype=torch.long)
        v = self.vertices
        for k, (a, b) in enumerate(zip(v, v.roll(-1, dims=0))):
            edge = b - a
            s = (((x - a) @ edge) / (edge @ edge)).clamp(0, 1)
            distance = torch.linalg.vector_norm(x - a - s[:, None] * edge, dim=1)
            closer = distance < best
            best, nearest = torch.where(closer, distance, best), torch.where(closer, k, nearest)
        return best, nearest

    def _sdf(self, x: Tensor) -> Tensor:
        distance, _ = self._edge_distances(x)
        return torch.where(self._inside(x), -distance, distance)

    def normal(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, 2) of the nearest edge (the first of the two at a vertex)."""
        _, nearest = self._edge_distances(as_points("Polygon.normal", points, 2))
        return self._edge_normals[nearest]

    def _interior_proposal(self) -> Proposal:
        box_area = float((self.upper - self.lower).prod())
        return Proposal(2, lambda cube: (self.lower + (self.upper - self.lower) * cube, None),
                        keep=lambda points, _: self._inside(points), rate=self.area / box_area)

    def _boundary_proposal(self) -> Proposal:
        cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), self._lengths.cumsum(0)])
        m = len(self.vertices)

        def propose(cube: Tensor) -> tuple[Tensor, Tensor]:
            # one column: the arc length along the boundary, starting at the first vertex
            s = cube[:, 0] * cumulative[-1]
            edge = (torch.searchsorted(cumulative, s.contiguous(), right=True) - 1).clamp(0, m - 1)
            along = ((s - cumulative[edge]) / self._lengths[edge]).clamp(0, 1)
            a, b = self.vertices[edge], self.vertices[(edge + 1) % m]
            return a + along[:, None] * (b - a), self._edge_normals[edge]

        return Proposal(1, propose)


