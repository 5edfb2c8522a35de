"""Forward-mode derivatives with `torch.func.jvp`: nested Jacobian-vector products along unit input directions.

The network acts on each point (row) separately, so a jvp of ``net`` at x (N, d) with the tangent e_i repeated on
every row (an (N, d) one-hot column) is d u/dx_i at all N points at once, for every output. Nesting jvps along
e_i1, ..., e_ik gives d^k u / dx_i1 ... dx_ik; the nested call carries the full hyper-dual number, so the same call
also yields every lower-order derivative along a subset of those directions, and all of them are cached.

The Laplacian and the gradient vectorise over directions instead: `torch.func.vmap` over the d unit tangents of one
jvp (gradient) or one jvp-of-jvp (second derivatives d^2u/dx_i^2), so d derivatives come from one batched call.

Gradients reach the network's parameters through ordinary autograd: `torch.func.jvp` only lifts the points (and
tangents) to its own transform level, so the parameters a module captures stay ordinary autograd leaves and every
operation on them is recorded (tests/test_derivatives_forward.py checks the parameter gradients against reverse
mode to 1e-10 in float64). No `functional_call` is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.func import jvp, vmap

from lightning_pde.derivatives.base import DerivativeEngine, Fields, Network


def unit_tangent(x: Tensor, i: int) -> Tensor:
    """The direction e_i on every row of `x` (N, d): shape (N, d), ones in column i, zeros elsewhere."""
    return torch.zeros_like(x).index_fill_(1, torch.tensor([i], device=x.device), 1.0)


def unit_tangents(x: Tensor, directions: Sequence[int]) -> Tensor:
    """The directions e_i, i in `directions`, each on every row of `x` (N, d): shape (len(directions), N, d)."""
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)[list(directions)]
    return eye[:, None, :].expand(len(directions), *x.shape)


def nested_jvp(net: Network, x: Tensor, tangents: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """All derivatives of `net` at `x` along subsets of `tangents`, by jvps nested k = len(tangents) deep.

    Returns 2^k tensors of the network's output shape; entry b (a bit mask over the tangents) is the derivative
    along the tangents whose bits are set: entry 0 is net(x), entry 2^k - 1 is d^k net(x) / dt_0 ... dt_{k-1}.
    Costs about 2^k forward passes.
    """
    def level(j: int):
        if j == 0:
            return lambda y: (net(y),)
        inner, tangent = level(j - 1), tangents[j - 1]

        def derivatives(y: Tensor) -> tuple[Tensor, ...]:
            primals, jvps = jvp(inner, (y,), (tangent,))
            return (*primals, *jvps)  # bit j - 1 clear, then set
        return derivatives

    return level(len(tangents))(x)


class ForwardFields(Fields):
    """Fields by forward mode (`torch.func.jvp`). Every call returns all outputs of the network, and every
    derivative a call yields on the way is cached under (output, sorted multi-index), as in
    :class:`~lightning_pde.derivatives.AutogradFields`; mixed partials commute for the smooth networks PINNs use.

    Args:
        net: the network, (N, d) -> (N, n_outputs), acting on each row separately.
        x: the points, shape (N, d).
        input_names: names of the d input columns.
        output_names: names of the n_outputs output columns.
        chunk_size: directions per vectorised call in :meth:`laplacian` and :meth:`grad` (None: all at once).
            Memory grows as chunk_size * N * width.
    """

    def __init__(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str],
                 chunk_size: int | None = None) -> None:
        super().__init__(net, x, input_names, output_names)
        self.chunk_size = chunk_size
        u = net(self.x)
        if u.ndim != 2 or u.shape[1] != len(self.output_names):
            raise ValueError(f"the network must return shape (N, {len(self.output_names)}) for outputs "
                             f"{self.output_names}, got {tuple(u.shape)}")
        self._cache: dict[tuple[int, tuple[int, ...]], Tensor] = {}
        self._store((), u)

    def _store(self, inputs: Sequence[int], block: Tensor) -> None:
        """Cache `block` (N, n_outputs), the derivative of every output along `inputs`."""
        key = tuple(sorted(inputs))
        for k in range(block.shape[1]):
            self._cache.setdefault((k, key), block[:, k])

    def partial(self, output: int, inputs: tuple[int, ...]) -> Tensor:
        key = (output, tuple(sorted(inputs)))
        if key not in self._cache:
            directions = key[1]
            blocks = nested_jvp(self.net, self.x, [unit_tangent(self.x, i) for i in directions])
            for mask, block in enumerate(blocks):
                self._store([i for bit, i in enumerate(directions) if mask >> bit & 1], block)
        return self._cache[key]

    def _missing(self, output: int, multi_indices: Sequence[tuple[int, ...]]) -> list[int]:
        """The directions i whose multi-index (i,) * order is not cached yet, in order, without repeats."""
        return list(dict.fromkeys(index[0] for index in multi_indices if (output, index) not in self._cache))

    def grad(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Gradient of `output` over `inputs` (default: all), shape (N, len(inputs)): one jvp vectorised over the
        missing directions, shape (directions, N, n_outputs)."""
        k, indices = self.indices(output, inputs)
        missing = self._missing(k, [(i,) for i in indices])
        if missing:
            def first(tangent: Tensor) -> Tensor:
                return jvp(self.net, (self.x,), (tangent,))[1]

            for i, block in zip(missing, vmap(first, chunk_size=self.chunk_size)(unit_tangents(self.x, missing))):
                self._store((i,), block)
        return torch.stack([self._cache[(k, (i,))] for i in indices], dim=1)

    def laplacian(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Sum of d^2 output / dx_i^2 over `inputs` (default: all), shape (N,): one jvp-of-jvp along e_i, vectorised
        over the missing directions i (activations (directions, N, width); see `chunk_size`). The first
        derivatives it yields on the way are cached too."""
        k, indices = self.indices(output, inputs)
        missing = self._missing(k, [(i, i) for i in indices])
        if missing:
            def first_and_second(tangent: Tensor) -> tuple[Tensor, Tensor]:
                return jvp(lambda y: jvp(self.net, (y,), (tangent,))[1], (self.x,), (tangent,))

            firsts, seconds = vmap(first_and_second, chunk_size=self.chunk_size)(unit_tangents(self.x, missing))
            for i, first, second in zip(missing, firsts, seconds):
                self._store((i,), first)
                self._store((i, i), second)
        return torch.stack([self._cache[(k, (i, i))] for i in indices]).sum(0)

    def derivatives_along(self, output: str, input_name: str, order: int) -> Tensor:
        """d^j output / d input_name^j for j = 0, ..., order, shape (order + 1, N), e.g. u, u_t, u_tt, u_ttt.

        One nested jvp along the single direction gives every order at once (about 2^order forward passes)."""
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ValueError(f"ForwardFields: order must be an integer >= 0, got {order!r}")
        k, (i,) = self.indices(output, [input_name])
        highest = self.partial(k, (i,) * order)  # also caches the lower orders
        return torch.stack([*(self._cache[(k, (i,) * j)] for j in range(order)), highest])

    def at(self, x: Tensor) -> "ForwardFields":
        return type(self)(self.net, x, self.input_names, self.output_names, chunk_size=self.chunk_size)


class Forward(DerivativeEngine):
    """Forward-mode automatic differentiation with `torch.func` (nested `jvp`; `vmap` over directions for the
    Laplacian and the gradient). Exact, like :class:`~lightning_pde.derivatives.Autograd`. One jvp serves every
    output, so it pays off for networks with several outputs (8 outputs: about 3x faster than reverse mode for
    d^k u / dt^k, k = 1..3, training step included). For a single output reverse mode is faster: 2-4x for the
    Laplacian of a tanh MLP on one CPU thread (benchmarks/derivatives.py), because a jvp-of-jvp carries three
    tangent streams per direction where reverse mode reuses one forward graph for every input.

    Args:
        chunk_size: input directions per vectorised call in `laplacian` and `grad`; None does all d in one call.
            Each call keeps about 3 * chunk_size * N * width activations per layer for the backward pass; once
            that outgrows the CPU caches, chunks are faster as well as smaller (d = 100, N = 4096, width 64:
            about 6 s per training step with chunk_size 5-10 against 23 s with None).

    The network must act on each point separately (no batch normalisation) and be composable with `torch.func`
    (no in-place operations on its input, no ``.item()``).
    """

    fields_class: type[ForwardFields] = ForwardFields

    def __init__(self, chunk_size: int | None = None) -> None:
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError(f"Forward: chunk_size must be None or an integer >= 1, got {chunk_size!r}")
        self.chunk_size = chunk_size

    def rows_per_point(self, n_inputs: int) -> int:
        # a jvp-of-jvp carries three tangent streams per direction, chunk_size directions at a time
        return 1 + 3 * min(n_inputs, self.chunk_size or n_inputs)

    def fields(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> Fields:
        return self.fields_class(net, x, input_names, output_names, chunk_size=self.chunk_size)
