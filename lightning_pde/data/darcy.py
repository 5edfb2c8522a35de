"""Joint (K, p) fields of 2-D Darcy flow -div(K grad p) = 1 on the unit square, p = 0 on the boundary, on n x n cell
centres by a cell-centred finite-volume scheme (docs/design.md, "Field data")."""

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


def _check_pair(owner: str, permeability: Tensor, pressure: Tensor) -> int:
    if permeability.shape != pressure.shape or permeability.ndim < 2 or permeability.shape[-1] != \
            permeability.shape[-2] or permeability.shape[-1] < 1:
        raise ValueError(f"{owner}: K and p must both be (..., n, n) with n >= 1, got {tuple(permeability.shape)} "
                         f"and {tuple(pressure.shape)}")
    return permeability.shape[-1]


def _face_fluxes(k: Tensor, p: Tensor, h: float, dim: int) -> Tensor:
    """K dp/dx_dim on the n + 1 cell faces across axis `dim` (-2 or -1): inside, the harmonic mean of the two cells'
    K times the centre-to-centre difference; at the walls (p = 0), the cell's own K over the distance h / 2."""
    first, last = k.narrow(dim, 0, k.shape[dim] - 1), k.narrow(dim, 1, k.shape[dim] - 1)
    inner = 2 * first * last / (first + last) * (p.narrow(dim, 1, p.shape[dim] - 1)
                                                 - p.narrow(dim, 0, p.shape[dim] - 1)) / h
    low = k.narrow(dim, 0, 1) * p.narrow(dim, 0, 1) / (h / 2)
    high = -k.narrow(dim, -1, 1) * p.narrow(dim, -1, 1) / (h / 2)
    return torch.cat([low, inner, high], dim=dim)


def darcy_residual(permeability: Tensor, pressure: Tensor, source: float | Tensor = 1.0) -> Tensor:
    """Finite-volume residual -div_h(K grad_h p) - f on n x n cell centres of the unit square, h = 1 / n, p = 0 on
    the boundary; entry [..., i, j] is the cell centred at x = (i + 1/2) h, y = (j + 1/2) h. Interior face
    permeability is the harmonic mean 2 K_P K_N / (K_P + K_N) of its two cells (so K must be positive: the mean is
    undefined where K_P + K_N = 0); a boundary face uses the cell's own K and the distance h / 2 to the wall. The
    same operator as the sparse matrix of :func:`solve_darcy`. Batched and differentiable in K and p.

    Args:
        permeability: K, shape (..., n, n).
        pressure: p, shape (..., n, n).
        source: f, a number or a tensor broadcastable to (..., n, n).

    Returns:
        The residual, shape (..., n, n) (flux balance per unit cell area).
    """
    n = _check_pair("darcy_residual", permeability, pressure)
    h = 1.0 / n
    divergence = 0
    for dim in (-2, -1):
        flux = _face_fluxes(permeability, pressure, h, dim)
        divergence = divergence + (flux.narrow(dim, 1, n) - flux.narrow(dim, 0, n)) / h
    return -divergence - source


#: generated permeabilities below this count as this in the residual of generated fields: the harmonic face mean
#: 2 K_P K_N / (K_P + K_N) is undefined at K_P + K_N = 0, and a generator's K can cross zero. Far below any data K
#: (3 and 12 by default), so a sample that needs it carries a large residual, as it should.
K_FLOOR = 1e-3


def darcy_fields_residual(fields: Tensor) -> Tensor:
    """:func:`darcy_residual` with f = 1 of fields (B, 2, n, n), channel 0 = K (floored at :data:`K_FLOOR`),
    channel 1 = p; returns (B, n, n). Differentiable (no gradient reaches K where it is floored)."""
    if fields.ndim != 4 or fields.shape[1] != 2:
        raise ValueError(f"darcy_fields_residual: fields must be (B, 2, n, n) (K, p), got {tuple(fields.shape)}")
    return darcy_residual(fields[:, 0].clamp_min(K_FLOOR), fields[:, 1])


def darcy_relative_residual(fields: Tensor) -> Tensor:
    """Per-sample ||-div_h(K grad_h p) - 1|| / ||1|| (the root mean square residual against f = 1) of
    :func:`darcy_fields_residual`, shape (B,)."""
    residual = darcy_fields_residual(fields).flatten(1)
    return residual.norm(dim=1) / residual.shape[1] ** 0.5


def darcy_matrix(permeability: np.ndarray) -> scipy.sparse.csc_matrix:
    """The (n^2, n^2) sparse matrix A of -div_h(K grad_h .) with p = 0 on the boundary (:func:`darcy_residual`),
    unknown [i, j] at row i n + j, for one K (n, n) > 0."""
    k = np.asarray(permeability, dtype=np.float64)
    n = k.shape[0]
    h2 = (1.0 / n) ** 2
    index = np.arange(n * n).reshape(n, n)
    tx = 2 * k[:-1] * k[1:] / (k[:-1] + k[1:]) / h2  # faces between [i, j] and [i + 1, j]
    ty = 2 * k[:, :-1] * k[:, 1:] / (k[:, :-1] + k[:, 1:]) / h2
    wall = np.zeros((n, n))  # boundary faces: K_P / (h/2) per face of length h, over the cell area h^2
    for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
        wall[edge] += 2 * k[edge] / h2
    diagonal = wall.copy()
    diagonal[:-1] += tx
    diagonal[1:] += tx
    diagonal[:, :-1] += ty
    diagonal[:, 1:] += ty
    rows = np.concatenate([index.ravel(), index[:-1].ravel(), index[1:].ravel(), index[:, :-1].ravel(),
                           index[:, 1:].ravel()])
    cols = np.concatenate([index.ravel(), index[1:].ravel(), index[:-1].ravel(), index[:, 1:].ravel(),
                           index[:, :-1].ravel()])
    values = np.concatenate([diagonal.ravel(), -tx.ravel(), -tx.ravel(), -ty.ravel(), -ty.ravel()])
    return scipy.sparse.csc_matrix((values, (rows, cols)), shape=(n * n, n * n))


def solve_darcy(permeability: np.ndarray, source: float | np.ndarray = 1.0) -> np.ndarray:
    """p solving the finite-volume system -div_h(K grad_h p) = f (:func:`darcy_residual`) for each K of a batch
    (B, n, n) or a single (n, n) field: one sparse LU solve per field. Float64.

    Args:
        permeability: K > 0, shape (B, n, n) or (n, n).
        source: f, a number or an array broadcastable to K's shape.
    """
    k = np.asarray(permeability, dtype=np.float64)
    if k.ndim not in (2, 3) or k.shape[-1] != k.shape[-2]:
        raise ValueError(f"solve_darcy: permeability must be (n, n) or (B, n, n), got shape {k.shape}")
    if not np.all(np.isfinite(k)) or not np.all(k > 0):
        raise ValueError("solve_darcy: permeability must be finite and > 0 everywhere")
    batch = k.reshape(-1, *k.shape[-2:])
    f = np.broadcast_to(np.asarray(source, dtype=np.float64), k.shape).reshape(batch.shape)
    p = np.stack([scipy.sparse.linalg.splu(darcy_matrix(one)).solve(rhs.ravel()).reshape(one.shape)
                  for one, rhs in zip(batch, f)])
    return p.reshape(k.shape)


def gaussian_random_field(count: int, n: int, alpha: float, tau: float, rng: np.random.Generator) -> np.ndarray:
    """count zero-mean fields (count, n, n) at the cell centres ((i + 1/2) / n, (j + 1/2) / n): cosine series
    sum_k xi_k tau^(alpha-1) (pi^2 |k|^2 + tau^2)^(-alpha/2) cos(pi k_1 x) cos(pi k_2 y) (up to the basis'
    normalisation), xi_k standard normal and the constant mode removed, i.e. the Gaussian measure
    N(0, tau^(2 alpha - 2) (-Lap + tau^2)^(-alpha)) with zero Neumann conditions (the FNO / DiffusionPDE Darcy set-up,
    arXiv 2010.08895, Sec. 5.2: alpha = 2, tau = 3, correlation length about 1 / tau). The inverse orthonormal DCT-II
    evaluates the cosine series exactly at the cell centres."""
    k = np.arange(n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    coef = tau ** (alpha - 1) * (np.pi**2 * k2 + tau**2) ** (-alpha / 2)
    coef[0, 0] = 0.0
    return scipy.fft.idctn(coef * n * rng.standard_normal((count, n, n)), axes=(1, 2), norm="ortho")


class DarcyFlow(SampleDataModule):
    """Pairs (K, p) stacked as 2 channels (channel 0 = K, channel 1 = p) on the n x n cell centres of the unit
    square, h = 1/n, entry [i, j] at ((i + 1/2) h, (j + 1/2) h). K is a Gaussian random field thresholded to two
    values: `k_high` where the field is >= 0, `k_low` elsewhere; the field has covariance
    tau^(2 alpha - 2) (-Lap + tau^2)^(-alpha) with zero Neumann conditions and zero mean (alpha = 2, tau = 3: the FNO
    and DiffusionPDE Darcy data, arXiv 2010.08895 and 2406.17763; correlation length about 1/tau), see
    :func:`gaussian_random_field`. p solves the finite-volume equation -div(K grad p) = 1 with p = 0 on the boundary
    (:func:`darcy_residual`: harmonic-mean face permeability, boundary faces at distance h/2 with the cell's own K) by
    one sparse LU solve per pair. Generated once per (parameters, count, seed) and cached as .npz (float32).

    Args:
        n: cells per side (32; 64 for the larger set).
        alpha: smoothness exponent of the random field.
        tau: inverse length scale of the random field.
        k_high: permeability where the field is >= 0.
        k_low: permeability where the field is < 0.
        n_train, n_val, batch_size, seed: as in :class:`SampleDataModule`.
    """

    pde = "darcy"  # the residual FieldResidual and PIDDM apply to these fields

    def __init__(self, n: int = 32, alpha: float = 2.0, tau: float = 3.0, k_high: float = 12.0, k_low: float = 3.0,
                 n_train: int = 4000, n_val: int = 500, batch_size: int = 64, seed: int = 0) -> None:
        super().__init__(n_train=n_train, n_val=n_val, batch_size=batch_size, seed=seed)
        self.n = integer_at_least("DarcyFlow", "n", n, 2)
        self.alpha = positive_float("DarcyFlow", "alpha", alpha)
        self.tau = positive_float("DarcyFlow", "tau", tau)
        # bounded so that the matrix entries 2 K / h^2 stay far inside float64
        self.k_high = positive_float("DarcyFlow", "k_high", k_high, maximum=1e12)
        self.k_low = positive_float("DarcyFlow", "k_low", k_low, maximum=1e12)
        self.data_shape = (2, self.n, self.n)

    def generate(self, n: int, seed: int) -> Tensor:
        params = {"n": self.n, "alpha": self.alpha, "tau": self.tau, "k_high": self.k_high, "k_low": self.k_low,
                  "count": n, "seed": seed}
        return torch.from_numpy(cached_array("darcy_flow", params, lambda: self._compute(n, seed))["x"])

    def _compute(self, count: int, seed: int) -> dict[str, np.ndarray]:
        field = gaussian_random_field(count, self.n, self.alpha, self.tau, np.random.default_rng(seed))
        k = np.where(field >= 0, self.k_high, self.k_low)
        p = solve_darcy(k)
        return {"x": np.stack([k, p], axis=1).astype(np.float32)}
