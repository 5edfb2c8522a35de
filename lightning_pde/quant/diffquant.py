"""DiffQuant: difference-based quantization for Stein's-estimator derivatives (Lu et al. 2025, arXiv 2512.09202).

Stein's estimator needs f(x + delta) - f(x) for perturbations |delta| ~ sigma = 0.01. Quantizing x + delta with a
block scale set by |x| ~ 1 (an INT8 step of 2^-6 = 0.0156 > sigma) rounds delta away: the differences collapse to
quantization noise ("underflow"). DiffQuant uses the linearity of every layer's GEMM, (a + da) W = a W + da W, and
carries the base activation a = a(x) and the difference da = a(x + delta) - a(x) through the network as two
tensors that are quantized separately, so da gets its own, much finer, block scale:

    z = Q(a) W^T + b,   dz = Q(da) W^T,   a' = s(z),   da' = s(z + dz) - s(z)

(the element-wise activation is applied in full precision). Quantizing only the first layer's input this way is not
enough at INT8 (the hidden activations underflow in turn; tt_quant notes, measured), so the difference path runs
through every layer. The base path is shared by all K perturbations of a point.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _linear_part(layer: nn.Module, h: Tensor) -> Tensor:
    """layer(h) without its bias: the image of a difference under an affine layer."""
    out = layer(h)
    bias = getattr(layer, "bias", None)
    return out if bias is None else out - bias


def diffquant_differences(net: nn.Module, x: Tensor, deltas: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """Base output f(x) and the differences f(x + delta_j) - f(x) for each tensor in `deltas`, by the difference
    path through every layer of an :class:`~lightning_pde.nn.MLP` (or TTMLP), whose layers quantize their own
    inputs if the network is quantized.

    Args:
        net: an MLP without embedding (``layers`` affine, ``_activation`` element-wise).
        x: base points (N, n_in).
        deltas: perturbations, each (N, K, n_in).

    Returns:
        f(x) (N, n_out) and, per delta, (N, K, n_out).

    Raises:
        ValueError: for a network with an embedding or without ``layers``.
    """
    if getattr(net, "embedding", None) is not None or not hasattr(net, "layers"):
        raise ValueError(f"DiffQuant: needs an MLP without embedding (layers and an element-wise activation), got "
                         f"{type(net).__name__}")
    n, k = x.shape[0], deltas[0].shape[1]
    a = x
    ds = [d.reshape(n * k, -1) for d in deltas]
    last = len(net.layers) - 1
    for index, layer in enumerate(net.layers):
        z = layer(a)
        dz = [_linear_part(layer, d) for d in ds]
        if index == last:
            return z, [d.reshape(n, k, -1) for d in dz]
        a = net._activation(z)
        base = a.repeat_interleave(k, dim=0)
        zk = z.repeat_interleave(k, dim=0)
        ds = [net._activation(zk + d) - base for d in dz]
    raise AssertionError("unreachable")


def naive_differences(net: nn.Module, x: Tensor, deltas: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """The same quantities by evaluating the network at x and at every x + delta (one batched pass) and
    subtracting: what DiffQuant replaces (under quantization, delta underflows)."""
    n, k = x.shape[0], deltas[0].shape[1]
    points = torch.cat([x, *[(x[:, None, :] + d).reshape(n * k, -1) for d in deltas]])
    out = net(points)
    base = out[:n]
    rest = out[n:].reshape(len(deltas), n, k, -1)
    return base, [rest[j] - base[:, None, :] for j in range(len(deltas))]
