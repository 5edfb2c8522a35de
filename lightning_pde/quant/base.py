"""The quantizer-recipe interface: what ``model.net.quantizer`` names (entry-point group ``lightning_pde.quantizers``)."""

from __future__ import annotations

from abc import abstractmethod

from torch import nn

from lightning_pde.spec import Configurable


class Quantizer(Configurable):
    """A recipe that turns a network layer into its quantized counterpart; networks call :meth:`convert` on every
    layer they build (e.g. ``MLP(quantizer=SMXQuantizer())``)."""

    @abstractmethod
    def convert(self, layer: nn.Module) -> nn.Module:
        """The quantized counterpart of `layer` (the layer itself when the recipe does not apply to it)."""
