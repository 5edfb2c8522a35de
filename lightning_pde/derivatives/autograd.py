"""Reverse-mode derivatives with `torch.autograd.grad`, cached so each backward pass serves every input at once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_pde.derivatives.base import DerivativeEngine, Fields, Network


class AutogradFields(Fields):
    """Fields by reverse mode. One backward pass of a scalar field gives its derivative along every input; all of
    them are cached, so Burgers' u_t, u_x and u_xx cost two passes, not three (the trick DeepXDE calls Jacobian
    caching)."""

    def __init__(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        super().__init__(net, x, input_names, output_names)
        u = net(self.x)
        if u.ndim != 2 or u.shape[1] != len(self.output_names):
            raise ValueError(f"the network must return shape (N, {len(self.output_names)}) for outputs "
                             f"{self.output_names}, got {tuple(u.shape)}")
        self._cache: dict[tuple[int, tuple[int, ...]], Tensor] = {(k, ()): u[:, k] for k in range(u.shape[1])}

    def partial(self, output: int, inputs: tuple[int, ...]) -> Tensor:
        # Mixed partials commute for the smooth networks PINNs use, so the key is the sorted multi-index.
        key = (output, tuple(sorted(inputs)))
        if key not in self._cache:
            lower = key[1][:-1]
            field = self.partial(output, lower)
            (gradient,) = torch.autograd.grad(field, self.x, torch.ones_like(field), create_graph=True)
            for j in range(self.x.shape[1]):
                self._cache.setdefault((output, tuple(sorted(lower + (j,)))), gradient[:, j])
        return self._cache[key]


class Autograd(DerivativeEngine):
    """Reverse-mode automatic differentiation (`torch.autograd.grad` with ``create_graph=True``): exact, and the
    default engine. Costs one backward pass per derivative order and per distinct lower-order field."""

    fields_class = AutogradFields

    def __init__(self) -> None:
        pass
