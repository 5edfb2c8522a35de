"""Brevitas quantizer recipes for lightning-pde networks.

Recipes: ``int8_per_tensor`` (brevitas ``Int8WeightPerTensorFloat`` weights, ``Int8ActPerTensorFloat`` inputs),
``int8_per_channel`` (``Int8WeightPerChannelFloat`` weights) and ``smx``, whose weight and activation quantizers are
brevitas quantizers with their tensor quantizer replaced (dependency injection) by :class:`SMXTensorQuant`, which
calls :func:`lightning_pde.quant.smx_quantize`. Brevitas' own MX-INT quantizers are not used: they block along one
axis (1 x 32) and, in 0.13, put the shared scale one power of two too low (docs/design.md).

Weights are quantized by the recipe's *weight* quantizer wherever they are: a Linear's weight by brevitas'
``QuantLinear``, and the merged factors a TTLinear computes from its cores by :class:`FactorWeightQuant`, a brevitas
weight-quantizer proxy whose scale follows the factor at every call (an activation quantizer there would learn a
fixed scale from its first batches and clip weights that outgrow it). Activations (layer inputs, TT contraction
intermediates) get the recipe's activation quantizer.

Brevitas quantizes forward tensors only (straight-through gradients); INT12 SMX gradients come from the
``SMXPrecision`` plugin or the built-in ``SMXQuantizer``.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.proxy import WeightQuantProxyFromInjector
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat
from torch import Tensor, nn

from lightning_pde.quant.base import Quantizer
from lightning_pde.quant.smx import smx_fake_quant, smx_scale
from lightning_pde.validation import integer_at_least


class SMXTensorQuant(nn.Module):
    """Brevitas tensor quantizer doing `bits`-bit, `block` x `block` SMX: returns (x_q, scale, zero_point,
    bit_width) as brevitas expects, the gradient straight through. x_q carries the per-tile scales; brevitas is
    given the largest tile scale as a scalar (its output-scale bookkeeping needs a per-tensor or per-channel shape).

    Args:
        bits: element bits, >= 2.
        block: tile side, >= 1.
    """

    def __init__(self, bits: int = 8, block: int = 4) -> None:
        super().__init__()
        self.bits = integer_at_least("SMXTensorQuant", "bits", bits, 2)
        self.block = integer_at_least("SMXTensorQuant", "block", block, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        q = smx_fake_quant(x, self.bits, self.block)
        scale = smx_scale(x.detach(), self.bits, self.block).amax()
        return q, scale, torch.zeros((), device=x.device), torch.tensor(float(self.bits), device=x.device)


class SMXWeightQuant(Int8WeightPerTensorFloat):
    """Brevitas weight quantizer with an SMX tensor quantizer."""

    tensor_quant = SMXTensorQuant


class SMXActQuant(Int8ActPerTensorFloat):
    """Brevitas activation quantizer with an SMX tensor quantizer."""

    tensor_quant = SMXTensorQuant


#: recipe name -> (weight quantizer, activation quantizer)
RECIPES = {
    "int8_per_tensor": (Int8WeightPerTensorFloat, Int8ActPerTensorFloat),
    "int8_per_channel": (Int8WeightPerChannelFloat, Int8ActPerTensorFloat),
    "smx": (SMXWeightQuant, SMXActQuant),
}


class _FactorShape(nn.Module):
    """What a brevitas weight proxy tracks: a weight-bearing module of the factor's 2-D shape (the values are never
    read: with one tracked tensor, brevitas takes the scale statistics from the tensor it is called with)."""

    output_channel_dim = 0

    def __init__(self, rows: int, columns: int) -> None:
        super().__init__()
        self.weight = torch.zeros(rows, columns)
        self.out_channels = rows


class FactorWeightQuant(nn.Module):
    """Fake-quantizes weight tensors a layer computes (a TTLinear's merged factors, passed as 2-D (rows, columns))
    with a brevitas weight quantizer: one proxy per factor shape, the scale taken from the factor at every call.

    The proxies hold no trainable state (only brevitas' constant buffers), so they are kept out of the module tree:
    a checkpoint's state_dict is the same before and after the first forward pass.

    Args:
        weight_quant: a brevitas weight quantizer (e.g. ``Int8WeightPerChannelFloat``).
    """

    def __init__(self, weight_quant: type) -> None:
        super().__init__()
        self.weight_quant = weight_quant
        self._proxies: dict[tuple[int, ...], WeightQuantProxyFromInjector] = {}
        #: False inside lightning_pde.quant.full_precision: the identity
        self.quant_enabled = True

    def proxy(self, shape: tuple[int, ...], device: torch.device) -> WeightQuantProxyFromInjector:
        proxy = self._proxies.get(shape)
        if proxy is None:
            proxy = self._proxies[shape] = WeightQuantProxyFromInjector(_FactorShape(*shape), self.weight_quant)
        return proxy.to(device)

    def forward(self, weight: Tensor) -> Tensor:
        if not self.quant_enabled:
            return weight
        if weight.dim() != 2:
            raise ValueError(f"FactorWeightQuant: expected a 2-D weight (rows, columns), got {tuple(weight.shape)}")
        out = self.proxy(tuple(weight.shape), weight.device)(weight)
        return out.value if hasattr(out, "value") else out

    def extra_repr(self) -> str:
        return f"weight_quant={self.weight_quant.__name__}"


class _Switchable:
    """``quant_enabled`` for brevitas modules (what :func:`lightning_pde.quant.full_precision` switches): off, every
    brevitas quantizer proxy inside passes its tensor through unquantized."""

    @property
    def quant_enabled(self) -> bool:
        return not all(proxy.disable_quant for proxy in self._proxies_inside())

    @quant_enabled.setter
    def quant_enabled(self, value: bool) -> None:
        for proxy in self._proxies_inside():
            proxy.disable_quant = not value

    def _proxies_inside(self) -> list:
        return [m for m in self.modules() if hasattr(m, "disable_quant") and hasattr(m, "tensor_quant")]


class SharedQuantLinear(_Switchable, QuantLinear):
    """A brevitas ``QuantLinear`` that :func:`~lightning_pde.quant.full_precision` can switch off."""


class SwitchableQuantIdentity(_Switchable, QuantIdentity):
    """A brevitas ``QuantIdentity`` that :func:`~lightning_pde.quant.full_precision` can switch off."""


class BrevitasQuantizer(Quantizer):
    """Quantizer recipe (``model.net.quantizer``) built on brevitas quantization-aware training.

    :meth:`convert` turns an ``nn.Linear`` into a brevitas ``QuantLinear`` (weights by the recipe's weight
    quantizer, inputs by its activation quantizer) that shares the Linear's Parameter objects, so an optimizer made
    before the conversion goes on training it; a TTLinear gets :class:`FactorWeightQuant` (the recipe's weight
    quantizer) on its merged weight factors and brevitas ``QuantIdentity`` (its activation quantizer) on its
    contraction intermediates. The activation quantizers learn their scale (brevitas' default for
    ``Int8ActPerTensorFloat``), a Parameter of the converted network.

    Args:
        recipe: ``int8_per_tensor``, ``int8_per_channel`` or ``smx``.
    """

    def __init__(self, recipe: str = "int8_per_tensor") -> None:
        if not isinstance(recipe, str) or recipe not in RECIPES:
            raise ValueError(f"BrevitasQuantizer: recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
        self.recipe = recipe

    def linear(self, layer: nn.Linear, input_layer: bool = False) -> nn.Module:
        if isinstance(layer, QuantLinear):
            return layer
        weight_quant, act_quant = RECIPES[self.recipe]
        new = SharedQuantLinear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                          weight_quant=weight_quant, input_quant=act_quant, return_quant_tensor=False)
        # the Linear's own Parameter objects: a network converted after its optimizer was made (convert_layers, a
        # precision plugin) must go on training the parameters the optimizer holds. Brevitas' weight proxy reads
        # the module's current weight at every call, so its scale follows the shared Parameter.
        new.weight = layer.weight
        if layer.bias is not None:
            new.bias = layer.bias
        return new.to(layer.weight.device)

    def weight_quantizer(self) -> nn.Module:
        return FactorWeightQuant(RECIPES[self.recipe][0])

    def activation_quantizer(self, input_layer: bool = False) -> nn.Module:
        return SwitchableQuantIdentity(act_quant=RECIPES[self.recipe][1], return_quant_tensor=False)
