"""Sliced Wasserstein distance between two sample sets (Rabin et al. 2011; Bonneel et al. 2015)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lightning_pde.validation import integer_at_least, positive_int


class SlicedWassersteinDistance(Metric):
    """SW_2(P, Q) = sqrt(mean over random unit directions theta of W_2^2(theta.P, theta.Q)), where the 1-D W_2 is
    computed from sorted projections (equal sample counts; the larger set is cut to the smaller one's size).
    Samples are flattened to vectors. Directions come from a fixed seed, so values are reproducible.

    Args:
        n_projections: number of random directions.
        seed: seed of the directions.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, n_projections: int = 256, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_projections = positive_int("SlicedWassersteinDistance", "n_projections", n_projections)
        self.seed = integer_at_least("SlicedWassersteinDistance", "seed", seed, 0)
        self.add_state("samples", default=[], dist_reduce_fx="cat")
        self.add_state("reference", default=[], dist_reduce_fx="cat")

    def update(self, samples: Tensor, reference: Tensor) -> None:
        """`samples` (N, ...) and `reference` (M, ...) with the same per-sample shape."""
        if samples.shape[1:] != reference.shape[1:]:
            raise ValueError(f"SlicedWassersteinDistance: samples {tuple(samples.shape)} and reference "
                             f"{tuple(reference.shape)} differ in per-sample shape")
        self.samples.append(samples.detach().flatten(1).double())
        self.reference.append(reference.detach().flatten(1).double())

    def compute(self) -> Tensor:
        x, y = dim_zero_cat(self.samples), dim_zero_cat(self.reference)
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
        generator = torch.Generator().manual_seed(self.seed)
        theta = torch.randn(x.shape[1], self.n_projections, generator=generator, dtype=torch.float64).to(x.device)
        theta = theta / theta.norm(dim=0, keepdim=True)
        px, py = (x @ theta).sort(dim=0).values, (y @ theta).sort(dim=0).values
        return ((px - py) ** 2).mean().sqrt()
