"""torchmetrics Metrics: they accumulate over batches and synchronise across DDP ranks."""

from lightning_pde.metrics.relative_l2 import RelativeL2Error
from lightning_pde.metrics.residual import PDEResidual

__all__ = ["PDEResidual", "RelativeL2Error"]
