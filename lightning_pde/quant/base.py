"""The quantizer-recipe interface: what ``model.net.quantizer`` names (entry-point group ``lightning_pde.quantizers``),
and two tools that work on any model: :func:`convert_layers` (quantize an already built model, e.g. post-training)
and :func:`full_precision` (run a quantized model without its quantization, e.g. to evaluate trained weights).

The number formats do not know the layers. A recipe supplies building blocks (:meth:`Quantizer.linear` for a dense
``nn.Linear``, :meth:`Quantizer.weight_quantizer` and :meth:`Quantizer.activation_quantizer` for tensors a layer
computes); a layer of its own kind declares how it is quantized with them by a method
``quantize_with(quantizer, input_layer=False) -> nn.Module`` (see :class:`~lightning_pde.nn.TTLinear`), and says
whether it computes in quantized numbers by ``is_quantized() -> bool``. So ``lightning_pde.nn`` imports this module
and this module imports nothing of ``lightning_pde.nn``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from lightning_pde.spec import Configurable


def quantizable(layer: nn.Module) -> bool:
    """Whether a quantizer recipe applies to `layer`: an ``nn.Linear`` (subclasses included) or a layer that declares
    ``quantize_with``."""
    return isinstance(layer, nn.Linear) or callable(getattr(layer, "quantize_with", None))


class Quantizer(Configurable):
    """A recipe that turns a network layer into its quantized counterpart; networks call :meth:`convert` on every
    layer they build (e.g. ``MLP(quantizer=SMXQuantizer())``), :meth:`convert_input_layer` on the first.

    A recipe implements :meth:`linear` (the quantized counterpart of a dense ``nn.Linear``) and the two tensor
    quantizers; :meth:`convert` dispatches: a layer with ``quantize_with`` quantizes itself with the recipe's tensor
    quantizers, an ``nn.Linear`` goes to :meth:`linear`, anything else is returned unchanged."""

    @abstractmethod
    def linear(self, layer: nn.Linear, input_layer: bool = False) -> nn.Module:
        """The quantized counterpart of the dense `layer`, sharing its Parameter objects (so that an optimizer made
        before the conversion goes on training it); `layer` itself when it is quantized already. `input_layer`:
        `layer` is the network's first, whose inputs are the coordinates."""

    @abstractmethod
    def weight_quantizer(self) -> nn.Module | None:
        """A module fake-quantizing a weight tensor a layer computes from its parameters (a TT layer's merged
        factors, viewed as 2-D (rows, columns)); None leaves weights in full precision."""

    @abstractmethod
    def activation_quantizer(self, input_layer: bool = False) -> nn.Module | None:
        """A module fake-quantizing an activation (a layer's input or an intermediate of its contraction, viewed as
        2-D (rows, features)); `input_layer`: for the input of the network's first layer (the coordinates)."""

    def convert(self, layer: nn.Module) -> nn.Module:
        """The quantized counterpart of `layer` (the layer itself when the recipe does not apply to it)."""
        return self._convert(layer, False)

    def convert_input_layer(self, layer: nn.Module) -> nn.Module:
        """:meth:`convert` for the network's first layer, whose input is the coordinates (a recipe may keep those at
        a higher precision, see ``SMXQuantizer(input_bits=...)``)."""
        return self._convert(layer, True)

    def _convert(self, layer: nn.Module, input_layer: bool) -> nn.Module:
        declared = getattr(layer, "quantize_with", None)
        if callable(declared):
            return declared(self, input_layer=input_layer)
        if isinstance(layer, nn.Linear):
            return self.linear(layer, input_layer=input_layer)
        return layer


def convert_layers(module: nn.Module, quantizer: Quantizer) -> int:
    """Replace, in place, every quantizable layer inside `module` (``nn.Linear``, or a layer declaring
    ``quantize_with`` such as :class:`~lightning_pde.nn.TTLinear`) by ``quantizer.convert(layer)``, which shares the
    layer's parameters, so optimizers stay valid. The first layer of a network with ``layers`` (an MLP) is converted
    by ``quantizer.convert_input_layer``.

    Returns:
        the number of layers converted (0 when `module` has none).
    """
    first = {id(m.layers[0]) for m in module.modules()
             if isinstance(getattr(m, "layers", None), nn.ModuleList) and len(m.layers)}
    converted = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if quantizable(child):
                convert = quantizer.convert_input_layer if id(child) in first else quantizer.convert
                setattr(parent, name, convert(child))
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
    """Whether the affine `layer` computes in quantized numbers now: what its ``is_quantized()`` says when it has one
    (SMXLinear, TTLinear: switched off inside :func:`full_precision`), False for a plain ``nn.Linear``, True for any
    other layer (a brevitas QuantLinear, say). Its ``weight`` then holds float master weights that the layer does not
    compute with."""
    declared = getattr(layer, "is_quantized", None)
    if callable(declared):
        return bool(declared())
    return type(layer) is not nn.Linear


def has_quantized_layers(module: nn.Module) -> bool:
    """Whether any quantizable layer inside `module` is :func:`quantized`."""
    return any(quantizable(m) and quantized(m) for m in module.modules())
