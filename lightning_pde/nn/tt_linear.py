"""Tensor-train (TT-matrix) linear layers (Novikov et al. 2015, arXiv 1509.06569; Lu et al. 2025, arXiv 2512.09202).

The weight W (M x N, M = prod m_k, N = prod n_k) is stored as d TT cores G_k of shape (r_{k-1}, m_k, n_k, r_k),
r_0 = r_d = 1 (tensorly's TT-matrix layout):

    W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] G_2[:, i_2, j_2, :] ... G_d[:, i_d, j_d, :]

and the forward pass contracts the input with the cores without forming W. Partial reconstruction (PRS, arXiv
2512.09202): the cores are merged in groups (``groups=[2, 2]`` merges G_1 G_2 and G_3 G_4) and the input is
contracted with one merged factor per group. Under quantization every merged factor and every intermediate is
quantized once, so fewer groups mean fewer re-quantizations (less error build-up) and more multiply-accumulates;
``groups=[1, 1, ..., 1]`` is the plain core-by-core contraction, ``groups=[d]`` the full reconstruction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorly as tl
import torch
from tensorly import tt_matrix
from torch import Tensor, nn

from lightning_pde.nn.mlp import MLP
from lightning_pde.quant.base import Quantizer
from lightning_pde.validation import integer_list


def _ranks(owner: str, rank: int | Sequence[int], d: int) -> list[int]:
    if isinstance(rank, (int,)) and not isinstance(rank, bool):
        values = [rank] * (d - 1)
    else:
        values = integer_list(owner, "rank", rank, minimum=1) if not isinstance(rank, bool) else [rank]
    if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in values) or len(values) != d - 1:
        raise ValueError(f"{owner}: rank must be an integer >= 1 or a list of {d - 1} integers >= 1 (the inner "
                         f"TT ranks), got {rank!r}")
    return [1, *values, 1]


class TTLinear(nn.Module):
    """y = x W^T + b with W in TT-matrix format, contracted core group by core group (never the dense W unless
    ``groups=[d]``).

    Args:
        in_shape: factorisation (n_1, ..., n_d) of the input size N = prod n_k.
        out_shape: factorisation (m_1, ..., m_d) of the output size M = prod m_k; same length d as `in_shape`.
        rank: inner TT rank (r_1 = ... = r_{d-1}), or the list of d - 1 inner ranks; each >= 1.
        groups: PRS grouping, positive sizes summing to d (default: one core per group).
        bias: learn an additive bias.

    Attributes:
        cores: the d trainable cores, (r_{k-1}, m_k, n_k, r_k).
        weight_quant, input_quant: optional modules applied to every merged weight factor and to every contraction
            intermediate (set by a quantizer recipe, :meth:`quantize_with`); None means full precision.
        layer_input_quant: the module for the layer's own input (the first contraction's); None means
            `input_quant`. A network's first layer keeps its input coordinates at a higher precision with it.

    Shapes: (..., N) -> (..., M).

    Raises:
        ValueError: for factorisations of different lengths or entries < 1, ranks < 1, or groups that are not
            positive sizes summing to d.
    """

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], rank: int | Sequence[int] = 2,
                 groups: Sequence[int] | None = None, bias: bool = True) -> None:
        super().__init__()
        self.in_shape = integer_list("TTLinear", "in_shape", in_shape, minimum=1)
        self.out_shape = integer_list("TTLinear", "out_shape", out_shape, minimum=1)
        d = len(self.in_shape)
        if len(self.out_shape) != d or d == 0:
            raise ValueError(f"TTLinear: in_shape and out_shape must have the same (non-zero) length, got "
                             f"{self.in_shape} and {self.out_shape}")
        self.ranks = _ranks("TTLinear", rank, d)
        groups = [1] * d if groups is None else integer_list("TTLinear", "groups", groups, minimum=1)
        if sum(groups) != d:
            raise ValueError(f"TTLinear: groups must be positive sizes summing to the number of cores {d}, got "
                             f"{list(groups)}")
        self.groups = groups
        self.in_features, self.out_features = math.prod(self.in_shape), math.prod(self.out_shape)
        # Xavier-normal variance for W: each entry is a sum of prod(ranks) products of d core entries
        target = 2.0 / (self.in_features + self.out_features)
        std = (target / math.prod(self.ranks)) ** (0.5 / d)
        self.cores = nn.ParameterList(
            nn.Parameter(torch.randn(self.ranks[k], self.out_shape[k], self.in_shape[k], self.ranks[k + 1]) * std)
            for k in range(d))
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None
        self.weight_quant: nn.Module | None = None
        self.input_quant: nn.Module | None = None
        self.layer_input_quant: nn.Module | None = None

    def set_quantizers(self, weight_quant: nn.Module | None, input_quant: nn.Module | None,
                       layer_input_quant: nn.Module | None = None) -> None:
        """Quantize merged weight factors with `weight_quant`, contraction intermediates with `input_quant` and the
        layer's own input with `layer_input_quant` (None: `input_quant`)."""
        self.weight_quant, self.input_quant, self.layer_input_quant = weight_quant, input_quant, layer_input_quant

    def quantize_with(self, quantizer: Quantizer, input_layer: bool = False) -> "TTLinear":
        """How a TT layer is quantized (the recipe's :meth:`~lightning_pde.quant.Quantizer.convert` calls this): the
        recipe's weight quantizer on every merged factor, its activation quantizer on every contraction intermediate
        and, for the network's first layer (`input_layer`), its input-layer activation quantizer on the coordinates.
        In place (the cores stay the same Parameters); returns the layer."""
        self.set_quantizers(quantizer.weight_quantizer(), quantizer.activation_quantizer(),
                            quantizer.activation_quantizer(input_layer=True) if input_layer else None)
        return self

    def is_quantized(self) -> bool:
        """Whether any quantizer hook is set and switched on (see :func:`lightning_pde.quant.full_precision`)."""
        return any(hook is not None and getattr(hook, "quant_enabled", True)
                   for hook in (self.weight_quant, self.input_quant, self.layer_input_quant))

    @classmethod
    def from_dense(cls, weight: Tensor, in_shape: Sequence[int], out_shape: Sequence[int], rank: int | Sequence[int],
                   bias: Tensor | None = None, groups: Sequence[int] | None = None) -> "TTLinear":
        """A TTLinear approximating the dense `weight` (M, N) by tensorly's TT-SVD (``tensor_train_matrix``)."""
        layer = cls(in_shape, out_shape, rank, groups, bias is not None)
        d = len(layer.in_shape)
        tensor = weight.detach().reshape(*layer.out_shape, *layer.in_shape)
        with tl.backend_context("pytorch"):
            from tensorly.decomposition import tensor_train_matrix
            factors = tensor_train_matrix(tensor, rank=layer.ranks)
        with torch.no_grad():
            for k in range(d):
                layer.cores[k] = nn.Parameter(factors[k].clone().contiguous())
            if bias is not None:
                layer.bias.copy_(bias)
        layer.ranks = [1, *(layer.cores[k].shape[3] for k in range(d))]
        return layer

    @property
    def weight(self) -> Tensor:
        """The dense W (M, N) reconstructed with tensorly (for tests, the forward Laplacian and autograd engines)."""
        with tl.backend_context("pytorch"):
            return tt_matrix.tt_matrix_to_matrix(list(self.cores))

    def n_parameters(self) -> int:
        return sum(core.numel() for core in self.cores) + (0 if self.bias is None else self.bias.numel())

    @property
    def compression_ratio(self) -> float:
        """Parameters of the dense layer (with bias) over this layer's."""
        dense = self.in_features * self.out_features + (0 if self.bias is None else self.out_features)
        return dense / self.n_parameters()

    def factors(self) -> list[Tensor]:
        """The merged factor of each group, (r_start, prod m, prod n, r_end), quantized when a hook is set."""
        out, start = [], 0
        for size in self.groups:
            factor = self.cores[start]
            for core in list(self.cores)[start + 1: start + size]:
                r0, m0, n0, _ = factor.shape
                _, m1, n1, r1 = core.shape
                factor = torch.einsum("amnr,rpqs->ampnqs", factor, core).reshape(r0, m0 * m1, n0 * n1, r1)
            if self.weight_quant is not None:
                shape = factor.shape
                factor = self.weight_quant(factor.reshape(shape[0] * shape[1], -1)).reshape(shape)
            out.append(factor)
            start += size
        return out

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        if x.shape[-1] != self.in_features:
            raise ValueError(f"TTLinear: expected inputs (..., {self.in_features}), got {tuple(x.shape)}")
        b = math.prod(lead) if lead else 1
        state = x.reshape(b, 1, 1, self.in_features)  # (batch, outputs done, rank, inputs left)
        for index, factor in enumerate(self.factors()):
            hook = self.layer_input_quant if index == 0 and self.layer_input_quant is not None else self.input_quant
            if hook is not None:
                state = hook(state.reshape(b, -1)).reshape(state.shape)
            r, m, n, s = factor.shape
            done, rest = state.shape[1], state.shape[3] // n
            state = torch.einsum("barin,rmis->bamsn", state.reshape(b, done, r, n, rest), factor)
            state = state.reshape(b, done * m, s, rest)
        y = state.reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias

    def macs(self, batch: int = 1) -> int:
        """Multiply-accumulates of one forward pass for `batch` rows: group merges plus contractions."""
        total, done, rest = 0, 1, self.in_features
        for factor in self.factors_shapes():
            r, m, n, s = factor
            rest //= n
            total += batch * done * r * n * rest * m * s
            done *= m
        start = 0
        for size in self.groups:  # merging a group's cores (batch independent)
            r0, m0, n0, r1 = self.ranks[start], self.out_shape[start], self.in_shape[start], self.ranks[start + 1]
            for k in range(start + 1, start + size):
                total += r0 * m0 * n0 * r1 * self.out_shape[k] * self.in_shape[k] * self.ranks[k + 1]
                m0, n0, r1 = m0 * self.out_shape[k], n0 * self.in_shape[k], self.ranks[k + 1]
            start += size
        return total

    def factors_shapes(self) -> list[tuple[int, int, int, int]]:
        out, start = [], 0
        for size in self.groups:
            out.append((self.ranks[start], math.prod(self.out_shape[start:start + size]),
                        math.prod(self.in_shape[start:start + size]), self.ranks[start + size]))
            start += size
        return out

    def extra_repr(self) -> str:
        return (f"in_shape={self.in_shape}, out_shape={self.out_shape}, ranks={self.ranks}, groups={self.groups}, "
                f"compression={self.compression_ratio:.1f}x")


class TTMLP(MLP):
    """An :class:`~lightning_pde.nn.MLP` whose layers may be :class:`TTLinear` (the paper's TT-compressed PINN).

    Args:
        hidden: widths of the hidden layers.
        activation: ``tanh``, ``sin`` or ``cos``.
        tt_shapes: per layer (len(hidden) + 1 of them) either ``[in_shape, out_shape]`` (the layer is a TTLinear
            with these factorisations, whose products must equal the layer's sizes) or null or ``[]`` (a dense
            layer).
        rank: inner TT rank of every TT layer, >= 1.
        groups: PRS grouping of every TT layer (null: core by core).
        quantizer: optional quantizer recipe (e.g. ``SMXQuantizer``) applied to every layer.
        in_features: number of inputs; None to take it from the problem.
        out_features: number of outputs; None to take it from the problem.

    Raises:
        ValueError: when a factorisation's product does not match its layer's size (naming the layer), or for the
            TTLinear errors.
    """

    def __init__(self, hidden: Sequence[int] = (512, 512), activation: str = "tanh",
                 tt_shapes: list | None = None, rank: int = 2,
                 groups: Sequence[int] | None = None, quantizer: Quantizer | None = None,
                 in_features: int | None = None, out_features: int | None = None) -> None:
        if tt_shapes is not None and (not isinstance(tt_shapes, (list, tuple)) or any(
                s is not None and (not isinstance(s, (list, tuple)) or len(s) not in (0, 2)) for s in tt_shapes)):
            raise ValueError(f"TTMLP: tt_shapes entries must be [in_shape, out_shape], or null or [] for a dense "
                             f"layer, got {tt_shapes!r}")
        self.tt_shapes = [[list(s[0]), list(s[1])] if s else None for s in (tt_shapes or [])]
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"TTMLP: rank must be an integer >= 1, got {rank!r}")
        self.rank = rank
        self.groups = None if groups is None else integer_list("TTMLP", "groups", groups, minimum=1)
        super().__init__(hidden, activation, None, None, quantizer=quantizer)
        if len(self.tt_shapes) not in (0, len(self.hidden) + 1):
            raise ValueError(f"TTMLP: tt_shapes must have one entry per layer ({len(self.hidden) + 1}), got "
                             f"{len(self.tt_shapes)}")
        if in_features is not None or out_features is not None:
            if in_features is None or out_features is None:
                raise ValueError("TTMLP: give both in_features and out_features, or neither")
            self.build(in_features, out_features)

    def make_layer(self, index: int, fan_in: int, fan_out: int) -> nn.Module:
        shapes = self.tt_shapes[index] if self.tt_shapes else None
        if shapes is None:
            return super().make_layer(index, fan_in, fan_out)
        in_shape, out_shape = shapes
        if math.prod(in_shape) != fan_in or math.prod(out_shape) != fan_out:
            raise ValueError(f"TTMLP: layer {index} is {fan_in} -> {fan_out}, but tt_shapes[{index}] = "
                             f"{[in_shape, out_shape]} has products {math.prod(in_shape)} -> {math.prod(out_shape)}")
        groups = self.groups if self.groups is not None and sum(self.groups) == len(in_shape) else None
        if self.groups is not None and groups is None:
            raise ValueError(f"TTMLP: groups {self.groups} must sum to the number of cores {len(in_shape)} of "
                             f"layer {index}")
        return TTLinear(in_shape, out_shape, self.rank, groups)

    def compression_ratio(self) -> float:
        """Dense parameters of the same widths over this network's parameters."""
        widths = [self.layers[0].in_features, *self.hidden, self.out_features]
        dense = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        return dense / sum(p.numel() for p in self.parameters())
