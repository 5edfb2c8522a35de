"""The quantizer-recipe interface: what ``model.net.quantizer`` names (entry-point group ``lightning_pde.quantizers``),
and two tools that work on any model: :func:`convert_layers` (quantize an already built model, e.g. post-training)
and :func:`full_precision` (run a quantized model without its quantization, e.g. to evaluate trained weights)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from lightning_pde.spec import Configurable


class Quantizer(Configurable):
    """A recipe that turns a network layer into its quantized counterpart; networks call :meth:`convert` on every
    layer they build (e.g. ``MLP(quantizer=SMXQuantizer())``)."""

    @abstractmethod
    def convert(self, layer: nn.Module) -> nn.Module:
        """The quantized counterpart of `layer` (the layer itself when the recipe does not apply to it)."""


def convert_layers(module: nn.Module, quantizer: Quantizer) -> int:
    """Replace, in place, every ``nn.Linear`` and :class:`~lightning_pde.nn.TTLinear` inside `module` by
    ``quantizer.convert(layer)`` (which shares the layer's parameters, so optimizers stay valid).

    Returns:
        the number of layers converted (0 when `module` has none).
    """
    from lightning_pde.nn.tt_linear import TTLinear

    converted = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.Linear, TTLinear)):
                setattr(parent, name, quantizer.convert(child))
                converted += 1
    return converted


@contextmanager
def full_precision(module: nn.Module) -> Iterator[nn.Module]:
    """Switch off, inside the block, the quantization of every layer of `module` that supports it (the built-in SMX
    layers and hooks: ``quant_enabled``); the weights are the trained (master) weights, unchanged.

    ``with full_precision(model): u = model(x)`` evaluates an SMX-trained model in float32, to separate the error of
    quantized training from that of quantized inference."""
    switched = [m for m in module.modules() if getattr(m, "quant_enabled", False)]
    for m in switched:
        m.quant_enabled = False
    try:
        yield module
    finally:
        for m in switched:
            m.quant_enabled = True


def quantized(layer: nn.Module) -> bool:
    """Whether the affine `layer` computes in quantized numbers now: an SMXLinear, or a TTLinear with quantizer hooks,
    whose quantization is switched on (see :func:`full_precision`), or any layer other than a plain ``nn.Linear`` or
    TTLinear (a brevitas QuantLinear, say). Its ``weight`` then holds float master weights that the layer does not
    compute with."""
    from lightning_pde.nn.tt_linear import TTLinear
    from lightning_pde.quant.smx import SMXLinear

    if type(layer) is nn.Linear:
        return False
    if isinstance(layer, SMXLinear):
        return layer.quant_enabled
    if isinstance(layer, TTLinear):
        return any(hook is not None and getattr(hook, "quant_enabled", True)
                   for hook in (layer.weight_quant, layer.input_quant))
    return True


def has_quantized_layers(module: nn.Module) -> bool:
    """Whether any ``nn.Linear`` or TTLinear inside `module` is :func:`quantized`."""
    from lightning_pde.nn.tt_linear import TTLinear

    return any(isinstance(m, (nn.Linear, TTLinear)) and quantized(m) for m in module.modules())
