"""Number formats for quantized PINN training: SMX fake quantization and its autograd functions (arXiv
2512.09202), DiffQuant, and the cost model. Quantizer recipes are registered under ``lightning_pde.quantizers``."""

from lightning_pde.quant.base import Quantizer, convert_layers, full_precision
from lightning_pde.quant.cost_model import StepCost, step_cost
from lightning_pde.quant.diffquant import diffquant_differences, naive_differences
from lightning_pde.quant.smx import (SMXFakeQuant, SMXLinear, SMXLinearFunction, SMXQuantizer, smx_fake_quant,
                                     smx_quantize, smx_quantize_reference)

__all__ = ["Quantizer", "convert_layers", "full_precision", "SMXFakeQuant", "StepCost", "step_cost", "SMXLinear", "SMXLinearFunction", "SMXQuantizer", "diffquant_differences",
           "naive_differences", "smx_fake_quant", "smx_quantize", "smx_quantize_reference"]
