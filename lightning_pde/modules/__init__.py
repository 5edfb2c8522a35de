"""LightningModules, registered under the ``lightning_pde.modules`` entry-point group."""

from lightning_pde.modules.pinn import PINN

__all__ = ["PINN"]
