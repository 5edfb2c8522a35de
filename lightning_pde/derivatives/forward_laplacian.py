"""The forward Laplacian (Li et al. 2023, arXiv 2307.08066): the Laplacian of a network in one forward pass.

Instead of one backward pass per input (reverse mode) or one jvp-of-jvp per input (`torch.func`), each layer carries,
per point, its value h, its Jacobian J = dh/dx with respect to all d inputs and its partial Laplacian
L = sum_{i in S} d^2 h / dx_i^2 over a chosen subset S of the inputs, by the chain rule:

    linear      z = h W^T + b          J_z = J W^T                  L_z = L W^T
    elementwise a = s(z)               J_a = s'(z) J_z              L_a = s'(z) L_z + s''(z) sum_{i in S} J_z[i]^2

The d directions share one batched matmul per layer, and the second derivatives are summed as they are formed, so
no (N, d, d) Hessian and no per-input second pass ever exists. Gradients reach the parameters through ordinary
autograd on these tensors.

A network opts in by exposing ``forward_laplacian(x, laplacian_inputs=...)`` returning u (N, m), the Jacobian
(N, d, m) and the Laplacian (N, m); :class:`~lightning_pde.modules.PINN` and :class:`~lightning_pde.nn.MLP` do. The
rules below are the building blocks those methods are written with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jvp, vmap

from lightning_pde.derivatives.autograd import AutogradFields
from lightning_pde.derivatives.base import DerivativeEngine, Fields, Network

#: which of the d directions the partial Laplacian sums over: every one (slice(None)), a contiguous run, or a list
InputSelector = slice | list[int]


def _tanh(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    value = torch.tanh(z)
    first = 1 - value.square()
    return value, first, -2 * value * first


def _sin(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    value = torch.sin(z)
    return value, torch.cos(z), -value


def _cos(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    value = torch.cos(z)
    return value, -torch.sin(z), -value


#: elementwise functions the propagation knows: name -> z (N, k) -> (s(z), s'(z), s''(z)), each (N, k)
ELEMENTWISE: dict[str, Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]] = {"tanh": _tanh, "sin": _sin, "cos": _cos}


def input_selector(laplacian_inputs: Sequence[int] | slice | None, n_directions: int) -> InputSelector:
    """The subset S of the `n_directions` inputs as an index: slice(None) for all (None or every index), a slice
    for a sorted contiguous run (a view, no copy), else the sorted list.

    Raises:
        ValueError: for indices out of range or repeated.
    """
    if laplacian_inputs is None or isinstance(laplacian_inputs, slice):
        return slice(None) if laplacian_inputs is None else laplacian_inputs
    indices = sorted(int(i) for i in laplacian_inputs)
    if len(set(indices)) != len(indices) or any(not 0 <= i < n_directions for i in indices):
        raise ValueError(f"forward Laplacian: laplacian_inputs must be distinct indices in [0, {n_directions}), "
                         f"got {list(laplacian_inputs)}")
    if indices == list(range(n_directions)):
        return slice(None)
    if indices and indices == list(range(indices[0], indices[-1] + 1)):
        return slice(indices[0], indices[-1] + 1)
    return indices


def linear(h: Tensor, jacobian: Tensor, laplacian: Tensor, weight: Tensor,
           bias: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """z = h W^T + b with J_z = J W^T and L_z = L W^T (the bias is constant in x).

    Shapes: h (N, in), jacobian (N or 1, d, in), laplacian (N or 1, in), weight (out, in); returns (N, out),
    (N or 1, d, out), (N or 1, out). A Jacobian shared by every point (1, d, in), such as that of the input
    normalisation, stays shared, so the first layer costs one (d, in) x (in, out) product.
    """
    return F.linear(h, weight, bias), F.linear(jacobian, weight), F.linear(laplacian, weight)


def layer_linear(layer: nn.Module, h: Tensor, jacobian: Tensor, laplacian: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The rule of :func:`linear` for an affine layer module that may compute in quantized numbers (an
    :class:`~lightning_pde.quant.SMXLinear`, a TTLinear with SMX hooks): z = layer(h), computed as the layer computes
    it, and the derivative streams mapped by the layer's own derivative, ``torch.func.jvp`` along each stream, which is
    straight through its rounding, as reverse mode and the Forward engine see it. Taking ``layer.weight`` instead
    would propagate the float weights past the quantizer. One vectorised jvp carries every stream.

    Shapes as :func:`linear`; the Jacobian and second-order part come back with N rows even when given shared.

    Raises:
        NotImplementedError: when the layer cannot be differentiated by ``torch.func`` (naming it).
    """
    n, width = h.shape[0], h.shape[1]
    streams = torch.cat([jacobian.expand(n, *jacobian.shape[1:]),
                         laplacian.expand(n, *laplacian.shape[1:]).reshape(n, -1, width)], dim=1)  # (N, k, in)
    try:
        z, dz = vmap(lambda t: jvp(layer, (h,), (t,)), in_dims=1, out_dims=(None, 1))(streams)
    except RuntimeError as error:
        raise NotImplementedError(f"forward Laplacian: the quantized layer {type(layer).__name__} cannot be "
                                  f"differentiated by torch.func ({error}); use the Autograd or Stein engine") from error
    d = jacobian.shape[1]
    second = dz[:, d:] if laplacian.dim() == 3 else dz[:, d]
    return z, dz[:, :d], second


def elementwise(name: str, z: Tensor, jacobian: Tensor, laplacian: Tensor,
                inputs: InputSelector) -> tuple[Tensor, Tensor, Tensor]:
    """a = s(z) for s in :data:`ELEMENTWISE`: J_a = s'(z) J_z, L_a = s'(z) L_z + s''(z) sum_{i in S} J_z[:, i]^2.

    The second-order part is either summed over S, laplacian (N or 1, k), or kept per direction of S (the diagonal
    of the Hessian, used by :class:`~lightning_pde.derivatives.SinglePass`), laplacian (N or 1, |S|, k), with
    D_a[i] = s'(z) D_z[i] + s''(z) J_z[:, i]^2; every rule here takes either form.

    Shapes: z (N, k), jacobian (N or 1, d, k); returns (N, k), (N, d, k) and the second-order part in its form.
    """
    value, first, second = ELEMENTWISE[name](z)
    if laplacian.dim() == 3:
        first_, second_ = first[:, None, :], second[:, None, :]
        return value, first_ * jacobian, first_ * laplacian + second_ * jacobian[:, inputs].square()
    curvature = jacobian[:, inputs].square().sum(dim=1)
    return value, first[:, None, :] * jacobian, first * laplacian + second * curvature


def concatenate(blocks: Sequence[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Features side by side: each block (value (N, k_j), jacobian (N or 1, d, k_j), second-order part
    (N or 1, k_j) or (N or 1, |S|, k_j)), shared (size-1) leading dimensions broadcast to N.
    Returns (N, sum k_j), (N, d, sum k_j) and (N, [|S|,] sum k_j)."""
    n = blocks[0][0].shape[0]
    return (torch.cat([value for value, _, _ in blocks], dim=1),
            torch.cat([jacobian.expand(n, -1, -1) for _, jacobian, _ in blocks], dim=2),
            torch.cat([laplacian.expand(n, *laplacian.shape[1:]) for _, _, laplacian in blocks], dim=-1))


class ForwardLaplacianFields(Fields):
    """Fields by the forward Laplacian, with reverse mode for what it cannot give.

    - ``u`` and every derivative the propagation does not carry (mixed second derivatives such as u_xt, third and
      higher orders, a single u_xx) come from an internal :class:`~lightning_pde.derivatives.AutogradFields` on the
      same points, whose network evaluation also checks the output shape when the fields are made.
    - ``laplacian(output, inputs)`` runs one propagation over exactly that subset of inputs (all outputs at once);
      the result is cached per subset, so a residual that asks for a second subset pays a second propagation.
    - First derivatives (``u_t``, ``grad``) come from the Jacobian of a propagation once one has run. Asked before
      any Laplacian, they come instead from one reverse-mode pass per output (which yields the derivative along
      every input at once): a first derivative does not tell which subset the Laplacian will sum over, and Heat's
      ``u_t - Δ_x u`` or HJB's ``|∇_x u|^2`` ask for it first. Once an output's first derivatives came from
      reverse mode, they keep coming from there.

    Args:
        net: the network, (N, d) -> (N, n_outputs), with ``forward_laplacian(x, laplacian_inputs=...)`` returning
            u (N, n_outputs), the Jacobian du/dx (N, d, n_outputs) and sum_{i in laplacian_inputs} d^2u/dx_i^2
            (N, n_outputs).
        x: the points, shape (N, d).
        input_names: names of the d input columns.
        output_names: names of the n_outputs output columns.

    Attributes:
        reverse: the :class:`~lightning_pde.derivatives.AutogradFields` on the same points that serves ``u`` and the
            derivatives the propagation does not carry.

    Raises:
        ValueError: when `net` has no ``forward_laplacian`` (naming its type), or for wrong point or output shapes.
    """

    def __init__(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        if not callable(getattr(net, "forward_laplacian", None)):
            raise ValueError(f"ForwardLaplacian: the network ({type(net).__name__}) has no forward_laplacian("
                             "x, laplacian_inputs) method, so its Laplacian cannot be propagated forward; use the "
                             "Autograd engine (or give the network that method, as PINN and MLP have)")
        super().__init__(net, x, input_names, output_names)
        self.reverse = AutogradFields(net, x, input_names, output_names)
        self._jacobian: Tensor | None = None  # (N, d, n_outputs), from the first propagation
        self._laplacians: dict[frozenset[int], Tensor] = {}  # subset S -> (N, n_outputs)
        self._reverse_gradients: set[int] = set()  # outputs whose first derivatives came from reverse mode

    def propagate(self, inputs: frozenset[int]) -> Tensor:
        """Run the forward Laplacian over the subset `inputs` (indices); cache and return it, (N, n_outputs)."""
        n, d, m = self.x.shape[0], self.x.shape[1], len(self.output_names)
        u, jacobian, laplacian = self.net.forward_laplacian(self.x, laplacian_inputs=sorted(inputs))
        if jacobian.shape != (n, d, m) or laplacian.shape != (n, m):
            raise ValueError(f"ForwardLaplacian: {type(self.net).__name__}.forward_laplacian must return the "
                             f"Jacobian (N, d, n_outputs) = {(n, d, m)} and the Laplacian (N, n_outputs) = {(n, m)}, "
                             f"got {tuple(jacobian.shape)} and {tuple(laplacian.shape)}")
        if self._jacobian is None:
            self._jacobian = jacobian
        self._laplacians[inputs] = laplacian
        return laplacian

    def partial(self, output: int, inputs: tuple[int, ...]) -> Tensor:
        if len(inputs) == 1:
            return self._first(output, list(inputs))[:, 0]
        if len(inputs) == 2 and inputs[0] == inputs[1] and frozenset(inputs) in self._laplacians:
            return self._laplacians[frozenset(inputs)][:, output]
        return self.reverse.partial(output, inputs)

    def _first(self, output: int, indices: list[int]) -> Tensor:
        """d output / dx_i for i in `indices`, shape (N, len(indices))."""
        if output in self._reverse_gradients or self._jacobian is None:
            self._reverse_gradients.add(output)
            return torch.stack([self.reverse.partial(output, (i,)) for i in indices], dim=1)
        return self._jacobian[:, indices, output]

    def grad(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Gradient of `output` over `inputs` (default: all), shape (N, len(inputs)); a slice of the Jacobian."""
        k, indices = self.indices(output, inputs)
        return self._first(k, indices)

    def laplacian(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Sum of d^2 output / dx_i^2 over `inputs` (default: all), shape (N,): one forward propagation over that
        subset, shared by every output and cached."""
        k, indices = self.indices(output, inputs)
        subset = frozenset(indices)
        if len(subset) != len(indices):  # a repeated input counts twice, as in Fields.laplacian
            return super().laplacian(output, inputs)
        laplacian = self._laplacians.get(subset)
        return (laplacian if laplacian is not None else self.propagate(subset))[:, k]


class ForwardLaplacian(DerivativeEngine):
    """The forward Laplacian (Li et al. 2023, arXiv 2307.08066): value, Jacobian and Laplacian of the network
    carried through its layers in one forward pass, then ordinary autograd to the parameters. For the Laplacian in
    many dimensions it is the fastest exact engine: one batched matmul per layer for all d directions, against d
    backward passes (:class:`~lightning_pde.derivatives.Autograd`) or d jvp-of-jvps
    (:class:`~lightning_pde.derivatives.Forward`); see benchmarks/derivatives.py.

    The network must expose ``forward_laplacian(x, laplacian_inputs=...)``: :class:`~lightning_pde.modules.PINN`
    does for an :class:`~lightning_pde.nn.MLP` (tanh, sin or cos; with or without a periodic or Fourier-feature
    embedding), also through a hard-constraint transform u = g(x) + d(x) n (composed exactly, see
    :meth:`PINN.forward_laplacian <lightning_pde.modules.PINN.forward_laplacian>`). Derivatives the propagation does
    not carry (mixed or higher order) fall back to reverse mode; see :class:`ForwardLaplacianFields`.
    """

    fields_class: type[ForwardLaplacianFields] = ForwardLaplacianFields

    def rows_per_point(self, n_inputs: int) -> int:
        # the value, the Jacobian's n_inputs streams and the Laplacian, plus the reverse-mode forward for u
        return 3 + n_inputs

    def __init__(self) -> None:
        pass
