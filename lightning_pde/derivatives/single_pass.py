"""Every derivative a typical PINN residual needs from one forward pass: value, Jacobian and Hessian diagonal."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_pde.derivatives.autograd import AutogradFields
from lightning_pde.derivatives.base import DerivativeEngine, Fields, Network
from lightning_pde.validation import name_list


class SinglePassFields(Fields):
    """u, du/dx_i and d^2u/dx_i^2 for every input i, from one propagation of the forward-Laplacian rules that keeps
    the second derivatives per direction instead of summing them (Li et al. 2023, arXiv 2307.08066, Sec. 3, with
    the Hessian diagonal in place of its trace).

    Laplacians over any subset of the inputs are sums of that diagonal. No ``torch.autograd.grad`` is involved, so
    the loss is an ordinary forward computation: its gradient is one backward pass and ``torch.compile`` can fuse
    the whole thing (``PINN(compile=True)``). A mixed or higher-order derivative (u_xt, u_xxx) falls back to reverse
    mode on the same points (:attr:`reverse`, created on first use), which ``used_reverse`` records.

    Args:
        net: the network with ``forward_laplacian(x, laplacian_inputs, diagonal=True)`` returning u (N, m), the
            Jacobian (N, d, m) and the Hessian diagonal (N, d, m), as :class:`~lightning_pde.modules.PINN` does.
        x: the points, (N, d).
        input_names: names of the d input columns.
        output_names: names of the m output columns.
        second: the inputs whose pure second derivatives are propagated (default all); the others come from reverse
            mode if a residual asks for them. Burgers' ``u_xx`` needs only ``["x"]``: a quarter less to carry.

    Raises:
        ValueError: when `net` has no ``forward_laplacian``, returns wrong shapes, or `second` names an unknown
            input.
    """

    def __init__(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str],
                 second: Sequence[str] | None = None, asked: set[int] | None = None) -> None:
        if not callable(getattr(net, "forward_laplacian", None)):
            raise ValueError(f"SinglePass: the network ({type(net).__name__}) has no forward_laplacian(x, "
                             "laplacian_inputs, diagonal) method; use the Autograd engine (or a PINN, which has it)")
        super().__init__(net, x, input_names, output_names)
        n, d, m = x.shape[0], x.shape[1], len(self.output_names)
        unknown = [name for name in (second or ()) if name not in self.input_names]
        if unknown:
            raise ValueError(f"SinglePass: second={list(second)} names unknown input(s) {unknown}; the inputs are "
                             f"{list(self.input_names)}")
        carried = list(range(d)) if second is None else sorted({self.input_names.index(name) for name in second})
        #: input index -> its row in the propagated Hessian diagonal
        self._rows = {i: row for row, i in enumerate(carried)}
        self._second = second
        #: indices of the inputs whose pure second derivatives were asked for (shared with `at`'s fields; recorded
        #: in eager mode only), from which PINN picks `second` for its residuals
        self.asked = asked if asked is not None else set()
        u, jacobian, diagonal = net.forward_laplacian(x, laplacian_inputs=carried, diagonal=True)
        for what, got, want in (("u", u, (n, m)), ("Jacobian", jacobian, (n, d, m)),
                                ("Hessian diagonal", diagonal, (n, len(carried), m))):
            if tuple(got.shape) != want:
                raise ValueError(f"SinglePass: {type(net).__name__}.forward_laplacian must return the {what} with "
                                 f"shape {want}, got {tuple(got.shape)}")
        self._u, self._jacobian, self._diagonal = u, jacobian, diagonal
        self._reverse: AutogradFields | None = None
        self.used_reverse = False

    def at(self, x: Tensor) -> "SinglePassFields":
        return type(self)(self.net, x, self.input_names, self.output_names, second=self._second, asked=self.asked)

    @property
    def reverse(self) -> AutogradFields:
        """Reverse-mode fields on the same points, for derivatives the propagation does not carry."""
        if self._reverse is None:
            self._reverse = AutogradFields(self.net, self.x, self.input_names, self.output_names)
            self.used_reverse = True
        return self._reverse

    def partial(self, output: int, inputs: tuple[int, ...]) -> Tensor:
        if not inputs:
            return self._u[:, output]
        if len(inputs) == 1:
            return self._jacobian[:, inputs[0], output]
        if len(inputs) == 2 and inputs[0] == inputs[1]:
            if not torch.compiler.is_compiling():
                self.asked.add(inputs[0])
            if inputs[0] in self._rows:
                return self._diagonal[:, self._rows[inputs[0]], output]
        return self.reverse.partial(output, inputs)

    @property
    def u(self) -> Tensor:
        return self._u

    def grad(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Gradient of `output` over `inputs` (default: all), (N, len(inputs)): a slice of the Jacobian."""
        k, indices = self.indices(output, inputs)
        return self._jacobian[:, indices, k]

    def laplacian(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Sum of d^2 output / dx_i^2 over `inputs` (default: all), (N,): a sum over the Hessian diagonal."""
        k, indices = self.indices(output, inputs)
        if not torch.compiler.is_compiling():
            self.asked.update(indices)
        if not all(i in self._rows for i in indices):
            return super().laplacian(output, inputs)
        return self._diagonal[:, [self._rows[i] for i in indices], k].sum(dim=1)


class SinglePass(DerivativeEngine):
    """Value, Jacobian and Hessian diagonal of the network in one forward pass (:class:`SinglePassFields`).

    The fastest engine on a CPU for problems whose residuals use first derivatives and pure second derivatives only
    (Poisson, Burgers, Helmholtz, Allen-Cahn, Klein-Gordon, low-dimensional heat): one widened forward pass and one
    backward pass per step, against a backward pass per derivative order in reverse mode, and the only engine
    whose loss ``torch.compile`` can compile whole (``PINN(compile=True)``). For the Laplacian in many dimensions
    (Heat(100)), :class:`~lightning_pde.derivatives.ForwardLaplacian` carries the summed trace instead of d
    diagonal entries and is cheaper. Needs a network with ``forward_laplacian`` (PINN over an MLP; a hard-constraint
    transform affine in the network output is composed exactly).

    Args:
        second: the inputs whose pure second derivatives the residuals use (``["x"]`` for Burgers' ``u_xx``).
            Default: all, except in a :class:`~lightning_pde.modules.PINN`, which sets it to those its conditions
            ask for when it checks them at construction. Each input left out is one direction less to carry through
            every layer (Burgers: 4 channels instead of 5); a second derivative asked for anyway comes from reverse
            mode, still exact.
    """

    fields_class: type[SinglePassFields] = SinglePassFields

    def __init__(self, second: Sequence[str] | None = None) -> None:
        self.second = None if second is None else name_list("SinglePass", "second", second, allow_empty=True)

    def rows_per_point(self, n_inputs: int) -> int:
        # the value, the Jacobian's n_inputs streams and up to n_inputs Hessian-diagonal streams
        return 1 + 2 * n_inputs

    def fields(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> Fields:
        return self.fields_class(net, x, input_names, output_names, second=self.second)
