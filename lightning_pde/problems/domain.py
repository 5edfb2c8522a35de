"""Domains and their samplers. Points are float64 on the CPU, drawn from a seeded `torch.Generator`, so every DDP
rank draws the same global set and keeps its own shard (see `lightning_pde.data`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SAMPLING_METHODS = ("uniform", "sobol")


def unit_cube(n: int, dim: int, generator: torch.Generator | None, method: str = "uniform") -> Tensor:
    """`n` points in [0, 1]^dim, shape (n, dim), float64: i.i.d. uniform or scrambled Sobol."""
    if method == "uniform":
        return torch.rand(n, dim, generator=generator, dtype=torch.float64)
    if method == "sobol":
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        return torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed).draw(n, dtype=torch.float64)
    raise ValueError(f"sampling method must be one of {SAMPLING_METHODS}, got {method!r}")


class Box:
    """The axis-aligned box [lower_0, upper_0] x ... x [lower_{d-1}, upper_{d-1}].

    Args:
        lower: lower corner, one value per input.
        upper: upper corner, one value per input; each must exceed `lower`.
    """

    def __init__(self, lower: Sequence[float], upper: Sequence[float]) -> None:
        if len(lower) != len(upper) or len(lower) < 1:
            raise ValueError(f"Box: lower and upper need the same length >= 1, got {len(lower)} and {len(upper)}")
        self.lower = torch.tensor(lower, dtype=torch.float64)
        self.upper = torch.tensor(upper, dtype=torch.float64)
        if not bool((self.upper > self.lower).all()):
            raise ValueError(f"Box: upper must exceed lower in every dimension, got {lower} and {upper}")

    @property
    def dim(self) -> int:
        return self.lower.numel()

    def sample(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` interior points, shape (n, dim)."""
        return self.lower + (self.upper - self.lower) * unit_cube(n, self.dim, generator, method)

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
    e1 = torch.zeros_like(normal[:1])
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


class Ball:
    """The closed ball {x in R^dim : |x| <= radius} centred at the origin.

    `lower` and `upper` are its bounding box, which input normalisation uses.

    Args:
        dim: space dimension, an integer >= 1.
        radius: radius, > 0.
    """

    def __init__(self, dim: int, radius: float = 1.0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"Ball: dim must be an integer >= 1, got {dim!r}")
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 < radius < float("inf"):
            raise ValueError(f"Ball: radius must be a finite number > 0, got {radius!r}")
        self.radius = float(radius)
        self.lower = torch.full((dim,), -self.radius, dtype=torch.float64)
        self.upper = torch.full((dim,), self.radius, dtype=torch.float64)

    @property
    def dim(self) -> int:
        return self.lower.numel()

    def sample(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform in the ball, shape (n, dim)."""
        return ball_from_cube(unit_cube(n, self.dim + 1, generator, method), self.radius)

    def sample_sphere(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform on the bounding sphere |x| = radius, shape (n, dim)."""
        return sphere_from_cube(unit_cube(n, self.dim, generator, method), self.radius)


class BallTime:
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
        self.ball = Ball(space_dim, radius)
        if not t_upper > t_lower:
            raise ValueError(f"BallTime: t_upper must exceed t_lower, got {t_lower} and {t_upper}")
        self.t_lower, self.t_upper = float(t_lower), float(t_upper)
        self.lower = torch.cat([self.ball.lower, torch.tensor([self.t_lower], dtype=torch.float64)])
        self.upper = torch.cat([self.ball.upper, torch.tensor([self.t_upper], dtype=torch.float64)])

    @property
    def dim(self) -> int:
        return self.lower.numel()

    @property
    def space_dim(self) -> int:
        return self.ball.dim

    def _time(self, column: Tensor) -> Tensor:
        return self.t_lower + (self.t_upper - self.t_lower) * column

    def sample(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform in the cylinder, shape (n, space_dim + 1)."""
        # One cube of dim + 1 columns, so Sobol points stay low-discrepancy jointly in space and time.
        cube = unit_cube(n, self.space_dim + 2, generator, method)
        return torch.cat([ball_from_cube(cube[:, :-1], self.ball.radius), self._time(cube[:, -1:])], dim=1)

    def sample_initial(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform in the ball at t = t_lower, shape (n, space_dim + 1)."""
        x = self.ball.sample(n, generator, method)
        return torch.cat([x, torch.full((n, 1), self.t_lower, dtype=torch.float64)], dim=1)

    def sample_boundary(self, n: int, generator: torch.Generator | None = None, method: str = "uniform") -> Tensor:
        """`n` points uniform on the lateral surface (sphere x [t_lower, t_upper]), shape (n, space_dim + 1)."""
        cube = unit_cube(n, self.space_dim + 1, generator, method)
        return torch.cat([sphere_from_cube(cube[:, :-1], self.ball.radius), self._time(cube[:, -1:])], dim=1)
