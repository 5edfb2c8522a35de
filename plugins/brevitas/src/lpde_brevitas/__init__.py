"""lightning-pde-brevitas: Brevitas quantization-aware layers for lightning-pde networks.

``model.net.quantizer: {class_path: BrevitasQuantizer, init_args: {recipe: int8_per_channel}}`` turns every Linear of
an MLP into a brevitas ``QuantLinear`` and gives every TTLinear brevitas quantizers on its weight factors and
contraction intermediates."""

from lpde_brevitas.quantizers import (RECIPES, BrevitasQuantizer, FactorWeightQuant, SMXActQuant, SMXTensorQuant,
                                     SMXWeightQuant)

#: the lightning-pde plugin API this package was written for (checked by lightning_pde.registry)
LPDE_PLUGIN_API = 1

__all__ = ["RECIPES", "BrevitasQuantizer", "FactorWeightQuant", "SMXActQuant", "SMXTensorQuant", "SMXWeightQuant"]
