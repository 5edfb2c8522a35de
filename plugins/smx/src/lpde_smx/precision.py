"""A Lightning precision plugin that trains a model in emulated SMX (Lu et al. 2025, arXiv 2512.09202)."""

from __future__ import annotations

from pytorch_lightning.plugins.precision import Precision
from torch import nn

from lightning_pde.quant.base import convert_layers
from lightning_pde.quant.smx import SMXQuantizer
from lightning_pde.validation import integer_at_least


class SMXPrecision(Precision):
    """Emulated square-block MX training: `convert_module` (called by the strategy once, before the model moves to
    its device and before DDP wraps it) swaps every ``nn.Linear`` for an
    :class:`~lightning_pde.quant.SMXLinear` sharing its parameters, and gives every
    :class:`~lightning_pde.nn.TTLinear` SMX hooks. The forward pass then uses `bits`-bit SMX weights and
    activations; the backward pass quantizes output gradients to `grad_bits`-bit SMX and reuses the one saved
    quantized copy of each weight and activation, transposed. Master weights and the optimizer stay in float32.

    Args:
        bits: SMX element bits of weights and activations (the paper: 8), >= 2.
        grad_bits: SMX element bits of gradients (the paper: 12), >= 2.
        block: square tile side (the paper: 4), >= 1.

    Every derivative engine sees the quantized layers: the exact ones (Autograd, Forward, ForwardLaplacian,
    SinglePass) differentiate straight through the rounding, Stein needs ``diffquant=True``.

    Raises:
        ValueError: in `convert_module` when the model has no Linear or TTLinear layer to quantize, or when its
            derivative engine cannot serve the quantized network (the module's ``check_conditions``).
    """

    precision = "32-true"

    def __init__(self, bits: int = 8, grad_bits: int = 12, block: int = 4) -> None:
        super().__init__()
        self.bits = integer_at_least("SMXPrecision", "bits", bits, 2)
        self.grad_bits = integer_at_least("SMXPrecision", "grad_bits", grad_bits, 2)
        self.block = integer_at_least("SMXPrecision", "block", block, 1)
        self.converted = 0

    def convert_module(self, module: nn.Module) -> nn.Module:
        self.converted = convert_layers(module, SMXQuantizer(self.bits, self.grad_bits, self.block))
        if self.converted == 0:
            raise ValueError(f"SMXPrecision: the model ({type(module).__name__}) has no nn.Linear or TTLinear "
                             "layer to quantize")
        # the module checked its derivative engine against the float network it was built with; check again, now,
        # before training, against the quantized one (e.g. Stein without DiffQuant is refused)
        check = getattr(module, "check_conditions", None)
        if callable(check):
            check()
        return module

    def state_dict(self) -> dict:
        return {"bits": self.bits, "grad_bits": self.grad_bits, "block": self.block}
