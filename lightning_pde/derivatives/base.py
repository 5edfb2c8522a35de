"""The derivative-engine interface.

An engine turns a network and a batch of points into a :class:`Fields` object: the network's outputs and their
partial derivatives, asked for by name. Problems write residuals against `Fields` only, so any engine (reverse-mode
autograd, forward-mode `torch.func`, Stein's estimator) serves every problem.

Names: an input or output name alone (``"x"``, ``"u"``) is that column; ``"u_xx"`` is d^2u/dx^2 and ``"u_xt"`` the
mixed derivative, the part after the first ``_`` read as a sequence of input names (longest match first, so
``"u_x1x2"`` works with inputs ``x1, x2``). Inputs whose names contain ``_`` are reached with :meth:`Fields.d`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_pde.spec import Configurable

Network = Callable[[Tensor], Tensor]


def parse_derivative(key: str, input_names: Sequence[str], output_names: Sequence[str]) -> tuple[int, tuple[int, ...]]:
    """Split ``"u_xt"`` into (output index, input indices), e.g. (0, (0, 1)) for inputs (x, t).

    Raises:
        KeyError: naming the key and the known inputs and outputs.
    """
    if key in output_names:
        return output_names.index(key), ()
    output, sep, rest = key.partition("_")
    if sep and output in output_names and rest:
        by_length = sorted(input_names, key=len, reverse=True)
        indices: list[int] = []
        while rest:
            match = next((name for name in by_length if rest.startswith(name)), None)
            if match is None:
                break
            indices.append(input_names.index(match))
            rest = rest[len(match):]
        if not rest:
            return output_names.index(output), tuple(indices)
    raise KeyError(f"unknown field or derivative {key!r}: outputs are {tuple(output_names)}, inputs are "
                   f"{tuple(input_names)} (write e.g. '{output_names[0]}_{input_names[0]}')")


class Fields(ABC):
    """Network outputs and their derivatives at a batch of points.

    Attributes:
        x: the points, shape (N, n_inputs).
        u: the network outputs, shape (N, n_outputs).
        domain: the problem's geometry, which :attr:`normal` reads (set by the module that builds the fields).
        values: observed values paired with the points, (N, k), for data conditions (:class:`PointData`).
        unknowns: the problem's unknown constants by name, which :meth:`unknown` reads.
    """

    domain: Any = None
    values: Tensor | None = None
    unknowns: Mapping[str, Tensor] | None = None

    def __init__(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        self.net = net
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        if x.ndim != 2 or x.shape[1] != len(self.input_names):
            raise ValueError(f"points must have shape (N, {len(self.input_names)}) for inputs {self.input_names}, "
                             f"got {tuple(x.shape)}")
        self.x = x

    def __getitem__(self, key: str) -> Tensor:
        """An input coordinate, an output, or a derivative by name; shape (N,)."""
        if key in self.input_names:
            return self.x[:, self.input_names.index(key)]
        output, inputs = parse_derivative(key, self.input_names, self.output_names)
        return self.partial(output, inputs)

    def indices(self, output: str, inputs: Sequence[str] | None = None) -> tuple[int, list[int]]:
        """(output index, input indices) for names; `inputs` None means all inputs.

        Raises:
            KeyError: naming an unknown output or input and the known ones.
        """
        if output not in self.output_names:
            raise KeyError(f"unknown output {output!r}; outputs are {self.output_names}")
        names = list(self.input_names if inputs is None else inputs)
        unknown = [name for name in names if name not in self.input_names]
        if unknown:
            raise KeyError(f"unknown input(s) {unknown}; inputs are {self.input_names}")
        return self.output_names.index(output), [self.input_names.index(name) for name in names]

    def d(self, output: str, *inputs: str) -> Tensor:
        """d^k output / d inputs[0] ... d inputs[k-1], shape (N,); ``f.d("u", "x_1", "x_1")``."""
        index, directions = self.indices(output, inputs)
        return self.partial(index, tuple(directions))

    def grad(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Gradient of `output` with respect to `inputs` (default: all), shape (N, len(inputs))."""
        return torch.stack([self.d(output, name) for name in (inputs or self.input_names)], dim=1)

    def laplacian(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        """Sum of the second derivatives of `output` over `inputs` (default: all inputs), shape (N,)."""
        return sum(self.d(output, name, name) for name in (inputs or self.input_names))  # type: ignore[return-value]

    @property
    def u(self) -> Tensor:
        return torch.stack([self.partial(k, ()) for k in range(len(self.output_names))], dim=1)

    @property
    def normal(self) -> Tensor:
        """Outward unit normals of the domain at the points, (N, n_inputs) (boundary conditions only)."""
        if self.domain is None or not callable(getattr(self.domain, "normal", None)):
            raise ValueError("f.normal needs the problem's domain, a geometry with normal(points) (lightning_pde."
                             f"geometry); these fields have {type(self.domain).__name__ if self.domain else 'none'}")
        cached = self.__dict__.get("_normal")
        if cached is None:
            # geometry is float64 on the CPU; the normals are constants of the points, not of the network
            normal = self.domain.normal(self.x.detach().to("cpu", torch.float64))
            cached = self.__dict__["_normal"] = normal.to(device=self.x.device, dtype=self.x.dtype)
        return cached

    def normal_derivative(self, output: str = "u") -> Tensor:
        """grad(output) . n at boundary points, shape (N,): Neumann and Robin conditions are one line with it."""
        return (self.grad(output) * self.normal).sum(dim=1)

    def unknown(self, name: str) -> Tensor:
        """The trainable estimate of the problem's unknown constant `name` (declared as ``unknowns = {...}``), 0-d."""
        if not self.unknowns or name not in self.unknowns:
            known = sorted(self.unknowns or ())
            raise KeyError(f"unknown constant {name!r}: the problem declares {known or 'none'} (add it to the "
                           "problem's `unknowns = {name: initial value}`)")
        return self.unknowns[name]

    def share_context(self, other: "Fields") -> "Fields":
        """Give `other` this object's domain, values and unknowns (fields built for other points or halves)."""
        other.domain, other.unknowns = self.domain, self.unknowns
        if other.values is None:
            other.values = self.values
        return other

    def at(self, x: Tensor) -> "Fields":
        """The same network's fields at other points (periodic conditions compare two sides of the domain)."""
        return type(self)(self.net, x, self.input_names, self.output_names)

    @abstractmethod
    def partial(self, output: int, inputs: tuple[int, ...]) -> Tensor:
        """d^k u_output / d x_inputs[0] ... d x_inputs[k-1], shape (N,), by index."""


class FieldsView(Fields):
    """Rows `rows` of another :class:`Fields`: conditions evaluated in one fused pass share its network evaluation
    and derivative passes (each derivative is computed once for all rows, then sliced)."""

    def __init__(self, parent: Fields, rows: slice) -> None:
        self.parent, self.rows = parent, rows
        self.net, self.input_names, self.output_names = parent.net, parent.input_names, parent.output_names
        self.x = parent.x[rows]
        self.domain, self.unknowns = parent.domain, parent.unknowns

    def partial(self, output: int, inputs: tuple[int, ...]) -> Tensor:
        return self.parent.partial(output, inputs)[self.rows]

    def grad(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        return self.parent.grad(output, inputs)[self.rows]

    def laplacian(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        return self.parent.laplacian(output, inputs)[self.rows]

    def at(self, x: Tensor) -> Fields:
        return self.parent.at(x)


class DerivativeEngine(Configurable):
    """Makes :class:`Fields` for a network at a batch of points. Subclasses set `fields_class`."""

    fields_class: type[Fields]

    def rows_per_point(self, n_inputs: int) -> int:
        """About how many network rows (activations held at once, with their graph) the fields at one point with
        `n_inputs` inputs cost, up to second derivatives along every input: what bounds the memory of scoring N
        points at once (:class:`~lightning_pde.modules.PINN` chunks its validation by it). Default: reverse mode, one
        forward pass, its backward and one more per input direction of second derivatives."""
        return 2 + 2 * n_inputs

    def fields(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> Fields:
        return self.fields_class(net, x, input_names, output_names)
