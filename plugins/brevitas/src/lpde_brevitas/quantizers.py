"""Brevitas quantizer recipes for lightning-pde networks.

Recipes: ``int8_per_tensor`` (brevitas ``Int8WeightPerTensorFloat`` weights, ``Int8ActPerTensorFloat`` inputs),
``int8_per_channel`` (``Int8WeightPerChannelFloat`` weights) and ``smx``, whose weight and activation quantizers are
brevitas quantizers with their tensor quantizer replaced (dependency injection) by :class:`SMXTensorQuant`, which
calls :func:`lightning_pde.quant.smx_quantize`. Brevitas' own MX-INT quantizers are not used: they block along one
axis (1 x 32) and, in 0.13, put the shared scale one power of two too low (docs/design.md).

Brevitas quantizes forward tensors only (straight-through gradients); INT12 SMX gradients come from the
``SMXPrecision`` plugin or the built-in ``SMXQuantizer``.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat
from torch import Tensor, nn

from lightning_pde.nn.tt_linear import TTLinear
from lightning_pde.quant.smx import smx_fake_quant, smx_scale
from lightning_pde.quant.base import Quantizer
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


class BrevitasQuantizer(Quantizer):
    """Quantizer recipe (``model.net.quantizer``) built on brevitas quantization-aware training.

    :meth:`convert` turns an ``nn.Linear`` into a brevitas ``QuantLinear`` (weights by the recipe's weight
    quantizer, inputs by its activation quantizer) sharing the Linear's parameters, and gives a TTLinear
    brevitas ``QuantIdentity`` quantizers on its merged weight factors and contraction intermediates.

    Args:
        recipe: ``int8_per_tensor``, ``int8_per_channel`` or ``smx``.
    """

    def __init__(self, recipe: str = "int8_per_tensor") -> None:
        if not isinstance(recipe, str) or recipe not in RECIPES:
            raise ValueError(f"BrevitasQuantizer: recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
        self.recipe = recipe

    def convert(self, layer: nn.Module) -> nn.Module:
        weight_quant, act_quant = RECIPES[self.recipe]
        if isinstance(layer, TTLinear):
            layer.set_quantizers(QuantIdentity(act_quant=act_quant, return_quant_tensor=False),
                                 QuantIdentity(act_quant=act_quant, return_quant_tensor=False))
            return layer
        if isinstance(layer, nn.Linear) and not isinstance(layer, QuantLinear):
            new = QuantLinear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                              weight_quant=weight_quant, input_quant=act_quant, return_quant_tensor=False)
            # the Linear's own Parameter objects, as SMXQuantizer does: a network converted after its optimizer was
            # made (convert_layers, a precision plugin) must go on training the parameters the optimizer holds
            new.weight = layer.weight
            if layer.bias is not None:
                new.bias = layer.bias
            return new
        return layer
