"""Data modules: collocation points for PINNs (DDP-sharded), field data sets and generators."""

from lightning_pde.data.collocation import CollocationDataModule

__all__ = ["CollocationDataModule"]
