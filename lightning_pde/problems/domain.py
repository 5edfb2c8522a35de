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
