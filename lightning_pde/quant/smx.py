"""Square-block MX (SMX) integer fake quantization (Lu et al. 2025, arXiv 2512.09202, Sec. "SMX").

Each block x block tile of a matrix shares one power-of-two scale (docs/design.md):

    amax = max |x| over the tile,   s = 2^(floor(log2 amax) - (bits - 2)),
    q = clamp(round_half_to_even(x / s), -(2^(bits-1) - 1), 2^(bits-1) - 1),   x_hat = q s

(the OCP MX-INT element convention: the tile maximum maps to |q| in [2^(bits-2), 2^(bits-1))). Because tiles are
square, quantizing the transpose gives the transpose of the quantized matrix, so one stored copy of a weight serves
the forward GEMM (reduction over in-features) and both backward GEMMs; 1-D MX blocks need a second copy blocked
along the other axis.

Training in SMX (the paper's recipe): INT8 weights and activations, INT12 output gradients. :func:`smx_linear`
saves the *quantized* input and weight in forward and reuses them, transposed, in backward. Rounding is
straight-through for derivatives (reverse and forward mode, any order), so a PINN's input derivatives through an SMX
layer are those of the layer with the quantized weights, as the float layer's are of its float weights.
"""

from __future__ import annotations

from collections.abc import Callable

import math

import torch
from torch import Tensor, nn

from lightning_pde.quant.base import Quantizer
from lightning_pde.validation import integer_at_least

#: smallest tile maximum treated as non-zero (float32's smallest normal); a tile of zeros stays zero
TINY = 2.0 ** -126


def _check(bits: object, block: object) -> tuple[int, int]:
    return integer_at_least("smx_quantize", "bits", bits, 2), integer_at_least("smx_quantize", "block", block, 1)


def smx_quantize(x: Tensor, bits: int = 8, block: int = 4) -> Tensor:
    """SMX fake quantization of `x` in square `block` x `block` tiles; tiles at the edges may be partial.

    A 2-D tensor is tiled as it is; a tensor with more dimensions is viewed as (prod of leading dims, last dim);
    a 1-D tensor as one row. Returns a tensor of the same shape and dtype whose values are ``q * 2^e`` with integer
    ``|q| <= 2^(bits-1) - 1``. No gradient rule: see :func:`smx_fake_quant` for a straight-through version.

    Raises:
        ValueError: for bits < 2 or block < 1.
    """
    bits, block = _check(bits, block)
    tiles, untile = _tiles(x, block)
    scale = _tile_scale(tiles, bits)
    limit = 2 ** (bits - 1) - 1
    codes = tiles / scale
    return untile(codes.round_().clamp_(-limit, limit).mul_(scale))  # in place: one buffer, not three


def _tiles(x: Tensor, block: int) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """`x` as square tiles (row tiles, block, column tiles, block), zero-padded at the edges, and the function
    that turns a tensor of that tiled shape back into `x`'s shape."""
    shape = x.shape
    m = x.reshape(1, -1) if x.dim() < 2 else x.reshape(-1, shape[-1])
    rows, cols = m.shape
    pad_r, pad_c = (-rows) % block, (-cols) % block
    padded = torch.nn.functional.pad(m, (0, pad_c, 0, pad_r)) if pad_r or pad_c else m
    tiles = padded.reshape((rows + pad_r) // block, block, (cols + pad_c) // block, block)
    return tiles, lambda t: t.reshape(padded.shape)[:rows, :cols].reshape(shape)


def _tile_scale(tiles: Tensor, bits: int) -> Tensor:
    """Each tile's power-of-two scale 2^(floor(log2 amax) - (bits - 2)), shape (row tiles, 1, column tiles, 1)."""
    # max |x| as max(max x, -min x): no full-size |x| copy (evaluating a large batch, that copy was the largest
    # allocation of the run); two single-axis reductions each, the contiguous column axis first: 2.4x faster on the
    # CPU than one reduction over both (strided) tile axes, and the same values
    high = tiles.amax(dim=3, keepdim=True).amax(dim=1, keepdim=True)
    low = tiles.amin(dim=3, keepdim=True).amin(dim=1, keepdim=True)
    amax = torch.maximum(high, low.neg_())
    # floor(log2 amax) exactly: frexp gives amax = mantissa * 2^exponent with mantissa in [0.5, 1)
    _, exponent = torch.frexp(amax.clamp_min(TINY))
    return torch.ldexp(torch.ones_like(amax), (exponent - 1 - (bits - 2)).to(amax.dtype))


def smx_scale(x: Tensor, bits: int = 8, block: int = 4) -> Tensor:
    """The power-of-two scale of each element's tile, same shape as `x` (so ``smx_quantize(x) / smx_scale(x)`` are
    the integer codes)."""
    bits, block = _check(bits, block)
    tiles, untile = _tiles(x, block)
    return untile(_tile_scale(tiles, bits).expand_as(tiles))


def smx_quantize_reference(x: Tensor, bits: int = 8, block: int = 4) -> Tensor:
    """Slow tile-by-tile reference of :func:`smx_quantize` in plain Python floats (for tests)."""
    bits, block = _check(bits, block)
    m = x.reshape(1, -1) if x.dim() < 2 else x.reshape(-1, x.shape[-1])
    values = m.double().tolist()
    out = [[0.0] * len(row) for row in values]
    limit = 2 ** (bits - 1) - 1
    rows, cols = m.shape
    for r0 in range(0, rows, block):
        for c0 in range(0, cols, block):
            cells = [(r, c) for r in range(r0, min(r0 + block, rows)) for c in range(c0, min(c0 + block, cols))]
            amax = max(abs(values[r][c]) for r, c in cells)
            if amax < TINY:
                continue
            mantissa, exponent = math.frexp(amax)
            scale = 2.0 ** (exponent - 1 - (bits - 2))
            for r, c in cells:
                q = round(values[r][c] / scale)  # Python's round is half to even
                out[r][c] = max(-limit, min(limit, q)) * scale
    return torch.tensor(out, dtype=x.dtype).reshape(x.shape)


class _Quantize(torch.autograd.Function):
    """Forward: SMX at `bits`. Backward and forward-mode tangents pass straight through, unquantized, so derivatives of
    any order (reverse mode with ``create_graph``, ``torch.func.jvp``) see the identity, as they do for the float
    layer. Gradients are quantized separately, by :class:`_QuantizeGradient`."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, bits: int, block: int) -> Tensor:  # type: ignore[override]
        return smx_quantize(x, bits, block)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        pass

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad, None, None

    @staticmethod
    def jvp(ctx, tangent: Tensor, *_) -> Tensor:  # type: ignore[override]
        return tangent


class _QuantizeGradient(torch.autograd.Function):
    """Forward: the identity. Backward: the incoming gradient SMX-quantized at `bits` (the paper's INT12 gradients).

    The rounding is straight-through itself: when the gradient carries a graph (``create_graph=True``, e.g. the
    Autograd engine's input derivatives, whose own derivatives make a Laplacian), the quantized gradient is
    ``g + (Q(g) - g).detach()``, whose derivative is the identity. Rounding alone has derivative zero almost
    everywhere, which made every second derivative through an SMX layer vanish."""

    generate_vmap_rule = True

    @staticmethod
    def forward(y: Tensor, bits: int, block: int) -> Tensor:  # type: ignore[override]
        return y.view_as(y)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        ctx.bits, ctx.block = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        quantized = smx_quantize(grad.detach(), ctx.bits, ctx.block)
        if grad.requires_grad:
            quantized = grad + (quantized - grad).detach()
        return quantized, None, None

    @staticmethod
    def jvp(ctx, tangent: Tensor, *_) -> Tensor:  # type: ignore[override]
        return tangent


def smx_fake_quant(x: Tensor, bits: int = 8, block: int = 4, grad_bits: int | None = None) -> Tensor:
    """:func:`smx_quantize` with a straight-through gradient, itself SMX-quantized at `grad_bits` when given;
    differentiable to any order (see :class:`_Quantize`)."""
    q = _Quantize.apply(x, bits, block)
    return q if grad_bits is None else _QuantizeGradient.apply(q, grad_bits, block)


def smx_linear(x: Tensor, weight: Tensor, bias: Tensor | None, bits: int = 8, grad_bits: int = 12,
               block: int = 4, input_bits: int | None = None) -> Tensor:
    """y = Q8(x) Q8(W)^T + b; backward dX = Q12(dY) Q8(W), dW = Q12(dY)^T Q8(x), db = sum dY.

    Autograd saves only the quantized x and W, and the backward GEMMs use them transposed, which is exact for square
    blocks (no second, differently blocked copy). Built from straight-through pieces rather than one
    ``autograd.Function`` with a hand-written backward, so the input derivatives a PINN needs work with every
    engine that differentiates the network: reverse mode to any order (the Laplacian by ``create_graph``, with the
    weights' gradient through it), ``torch.func.jvp`` and ``vmap``. x may have leading batch dimensions.
    `input_bits` (default `bits`) quantizes x alone: a network's first layer keeps its input coordinates at a
    higher precision (INT12), as the paper's accelerator does (docs/quant.md).
    """
    shape = x.shape
    xq = _Quantize.apply(x.reshape(-1, shape[-1]), bits if input_bits is None else input_bits, block)
    wq = _Quantize.apply(weight, bits, block)
    y = _QuantizeGradient.apply(xq @ wq.T, grad_bits, block)
    if bias is not None:
        y = y + bias
    return y.reshape(*shape[:-1], weight.shape[0])


class SMXLinear(nn.Linear):
    """An ``nn.Linear`` trained in SMX: INT8 (`bits`) weights and inputs, INT12 (`grad_bits`) output gradients.

    Args:
        in_features: input size.
        out_features: output size.
        bias: learn an additive bias (kept in full precision).
        bits: SMX element bits of weights and activations, >= 2.
        grad_bits: SMX element bits of output gradients, >= 2.
        block: tile side, >= 1.
        input_bits: SMX element bits of the layer's input, >= 2; None means `bits` (a first layer: 12).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bits: int = 8, grad_bits: int = 12,
                 block: int = 4, input_bits: int | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._set_format(bits, grad_bits, block, input_bits)

    def _set_format(self, bits: int, grad_bits: int, block: int, input_bits: int | None) -> None:
        self.bits = integer_at_least("SMXLinear", "bits", bits, 2)
        self.grad_bits = integer_at_least("SMXLinear", "grad_bits", grad_bits, 2)
        self.block = integer_at_least("SMXLinear", "block", block, 1)
        self.input_bits = self.bits if input_bits is None else integer_at_least("SMXLinear", "input_bits",
                                                                                input_bits, 2)
        #: False inside lightning_pde.quant.full_precision: a plain float linear with the same weights
        self.quant_enabled = True

    @classmethod
    def from_linear(cls, layer: nn.Linear, bits: int = 8, grad_bits: int = 12, block: int = 4,
                    input_bits: int | None = None) -> "SMXLinear":
        """An SMXLinear sharing `layer`'s parameters (the same Parameter objects, so optimizers stay valid)."""
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features, new.out_features = layer.in_features, layer.out_features
        new.weight, new.bias = layer.weight, layer.bias
        new._set_format(bits, grad_bits, block, input_bits)
        return new

    def is_quantized(self) -> bool:
        return self.quant_enabled

    def forward(self, x: Tensor) -> Tensor:
        if not self.quant_enabled:  # see lightning_pde.quant.full_precision
            return nn.functional.linear(x, self.weight, self.bias)
        return smx_linear(x, self.weight, self.bias, self.bits, self.grad_bits, self.block, self.input_bits)

    def extra_repr(self) -> str:
        extra = f", input_bits={self.input_bits}" if self.input_bits != self.bits else ""
        return f"{super().extra_repr()}, bits={self.bits}, grad_bits={self.grad_bits}, block={self.block}{extra}"


class SMXFakeQuant(nn.Module):
    """A module applying :func:`smx_fake_quant`; the quantization hook of :class:`~lightning_pde.nn.TTLinear`.

    Args:
        bits: element bits of the forward value, >= 2.
        grad_bits: element bits of the gradient flowing back, >= 2, or None for a full-precision gradient.
        block: tile side, >= 1.
    """

    def __init__(self, bits: int = 8, grad_bits: int | None = 12, block: int = 4) -> None:
        super().__init__()
        self.bits = integer_at_least("SMXFakeQuant", "bits", bits, 2)
        self.grad_bits = None if grad_bits is None else integer_at_least("SMXFakeQuant", "grad_bits", grad_bits, 2)
        self.block = integer_at_least("SMXFakeQuant", "block", block, 1)
        #: False inside lightning_pde.quant.full_precision: the identity
        self.quant_enabled = True

    def forward(self, x: Tensor) -> Tensor:
        if not self.quant_enabled:
            return x
        return smx_fake_quant(x, self.bits, self.block, self.grad_bits)


class SMXQuantizer(Quantizer):
    """The built-in quantizer recipe for ``model.net.quantizer``: SMX training of every layer of a network.

    An ``nn.Linear`` becomes an :class:`SMXLinear` sharing its parameters; a layer declaring ``quantize_with``
    (:class:`~lightning_pde.nn.TTLinear`) gets :class:`SMXFakeQuant` hooks on its (partially reconstructed) weight
    factors and on every intermediate of its contraction.

    Args:
        bits: element bits of weights and activations (the paper: 8), >= 2.
        grad_bits: element bits of gradients (the paper: 12), >= 2.
        block: tile side (the paper: 4), >= 1.
        input_bits: element bits of the network's input coordinates, the first layer's input (>= 2; None means
            `bits`). The paper's accelerator keeps inputs at a higher precision; rounding the coordinates themselves
            to INT8 costs about 1.2e-3 relative L2 on Poisson2D (docs/quant.md), so the paper configs use 12.
    """

    def __init__(self, bits: int = 8, grad_bits: int = 12, block: int = 4, input_bits: int | None = None) -> None:
        self.bits = integer_at_least("SMXQuantizer", "bits", bits, 2)
        self.grad_bits = integer_at_least("SMXQuantizer", "grad_bits", grad_bits, 2)
        self.block = integer_at_least("SMXQuantizer", "block", block, 1)
        self.input_bits = self.bits if input_bits is None else integer_at_least("SMXQuantizer", "input_bits",
                                                                                input_bits, 2)

    def linear(self, layer: nn.Linear, input_layer: bool = False) -> nn.Module:
        if isinstance(layer, SMXLinear):
            return layer
        return SMXLinear.from_linear(layer, self.bits, self.grad_bits, self.block,
                                     self.input_bits if input_layer else None)

    def weight_quantizer(self) -> nn.Module:
        return SMXFakeQuant(self.bits, self.grad_bits, self.block)

    def activation_quantizer(self, input_layer: bool = False) -> nn.Module:
        return SMXFakeQuant(self.input_bits if input_layer else self.bits, self.grad_bits, self.block)
