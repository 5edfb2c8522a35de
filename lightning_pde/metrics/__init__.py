"""torchmetrics Metrics: they accumulate over batches and synchronise across DDP ranks."""

from lightning_pde.metrics.relative_l2 import RelativeL2Error
from lightning_pde.metrics.residual import PDEResidual
from lightning_pde.metrics.field_residual import FieldResidual
from lightning_pde.metrics.frechet import FrechetDistance
from lightning_pde.metrics.sliced_wasserstein import SlicedWassersteinDistance

__all__ = ["FieldResidual", "FrechetDistance", "PDEResidual", "RelativeL2Error", "SlicedWassersteinDistance"]
