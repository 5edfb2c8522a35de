"""Number formats for quantized PINN training: SMX fake quantization and its autograd functions (arXiv
2512.09202), DiffQuant, and the cost model. Quantizer recipes are registered under ``lightning_pde.quantizers``."""

from lightning_pde.quant.base import Quantizer, convert_layers, full_precision, has_quantized_layers, quantized
from lightning_pde.quant.cost_model import StepCost, assumptions, step_cost
from lightning_pde.quant.diffquant import diffquant_differences, naive_differences
from lightning_pde.quant.smx import (SMXFakeQuant, SMXLinear, SMXQuantizer, smx_fake_quant, smx_linear, smx_quantize,
                                     smx_quantize_reference)

__all__ = ["Quantizer", "convert_layers", "full_precision", "has_quantized_layers", "quantized", "SMXFakeQuant",
           "StepCost", "assumptions", "step_cost", "SMXLinear", "SMXQuantizer", "diffquant_differences",
           "naive_differences", "smx_fake_quant", "smx_linear", "smx_quantize", "smx_quantize_reference"]
