"""Data modules: collocation points for PINNs (DDP-sharded), field data sets and generators."""

from lightning_pde.data.collocation import CollocationDataModule
from lightning_pde.data.darcy import DarcyFlow
from lightning_pde.data.digits import DigitsImages
from lightning_pde.data.mixture import GaussianMixture2D, SampleDataModule
from lightning_pde.data.poisson_fields import PoissonFields

__all__ = ["CollocationDataModule", "DarcyFlow", "DigitsImages", "GaussianMixture2D", "PoissonFields",
           "SampleDataModule"]
