"""Joint (a, u) fields of the 2-D Poisson equation -Lap_h u = a on an n x n interior grid (docs/design.md)."""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import Tensor

from lightning_pde.data.mixture import SampleDataModule
from lightning_pde.reference.cache import cached_array
from lightning_pde.validation import integer_at_least, positive_float


def laplacian_5point(u: Tensor) -> Tensor:
    """5-point Lap_h u of (..., n, n) interior values with zero Dirichlet boundary, h = 1 / (n + 1)."""
    n = u.shape[-1]
    h = 1.0 / (n + 1)
    padded = torch.nn.functional.pad(u, (1, 1, 1, 1))
    return (padded[..., 2:, 1:-1] + padded[..., :-2, 1:-1] + padded[..., 1:-1, 2:] + padded[..., 1:-1, :-2]
            - 4 * u) / h**2


def poisson_residual(fields: Tensor) -> Tensor:
    """-Lap_h u - a for fields (B, 2, n, n), channel 0 = a, channel 1 = u; returns (B, n, n)."""
    return -laplacian_5point(fields[:, 1]) - fields[:, 0]


def relative_residual(fields: Tensor) -> Tensor:
    """Per-sample ||-Lap_h u - a|| / ||a||, shape (B,)."""
    return poisson_residual(fields).flatten(1).norm(dim=1) / fields[:, 0].flatten(1).norm(dim=1)


def _poisson_matrix(n: int) -> scipy.sparse.csc_matrix:
    h = 1.0 / (n + 1)
    one_d = scipy.sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]) / h**2
    eye = scipy.sparse.identity(n)
    return (scipy.sparse.kron(one_d, eye) + scipy.sparse.kron(eye, one_d)).tocsc()


def solve_poisson(a: np.ndarray) -> np.ndarray:
    """Exact solution u of the 5-point system -Lap_h u = a for a batch a (B, n, n) (one sparse LU, batched)."""
    n = a.shape[-1]
    lu = scipy.sparse.linalg.splu(_poisson_matrix(n))
    return lu.solve(a.reshape(len(a), -1).T.astype(np.float64)).T.reshape(a.shape)


class PoissonFields(SampleDataModule):
    """Pairs (a, u) stacked as 2 channels on the n x n interior grid of the unit square, spacing h = 1/(n+1), zero
    Dirichlet boundary, with u the exact solution of the 5-point system -Lap_h u = a (sparse LU). a is a smooth
    Gaussian random field: cosine-series coefficients with standard deviation tau^(alpha-1) (pi^2 |k|^2 +
    tau^2)^(-alpha/2) (the DiffusionPDE Poisson convention, arXiv 2406.17763). Generated once and cached as .npz.

    Args:
        n: interior grid points per side (even, for the U-Net).
        alpha: smoothness exponent of the random field.
        tau: inverse length scale of the random field.
        n_train, n_val, batch_size, seed: as in :class:`SampleDataModule`.
    """

    pde = "poisson"  # the residual FieldResidual and PIDDM apply to these fields

    def __init__(self, n: int = 16, alpha: float = 2.0, tau: float = 3.0, n_train: int = 4000, n_val: int = 500,
                 batch_size: int = 64, seed: int = 0) -> None:
        super().__init__(n_train=n_train, n_val=n_val, batch_size=batch_size, seed=seed)
        self.n = integer_at_least("PoissonFields", "n", n, 2)
        self.alpha = positive_float("PoissonFields", "alpha", alpha)
        self.tau = positive_float("PoissonFields", "tau", tau)
        self.data_shape = (2, self.n, self.n)

    def generate(self, n: int, seed: int) -> Tensor:
        params = {"n": self.n, "alpha": self.alpha, "tau": self.tau, "count": n, "seed": seed}
        return torch.from_numpy(cached_array("poisson_fields", params, lambda: self._compute(n, seed))["x"])

    def _compute(self, count: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        k = np.arange(self.n)
        k2 = k[:, None] ** 2 + k[None, :] ** 2
        coef = self.tau ** (self.alpha - 1) * (np.pi**2 * k2 + self.tau**2) ** (-self.alpha / 2)
        coef[0, 0] = 0.0
        a = scipy.fft.idctn(coef * self.n * rng.standard_normal((count, self.n, self.n)), axes=(1, 2), norm="ortho")
        u = solve_poisson(a)
        return {"x": np.stack([a, u], axis=1).astype(np.float32)}
