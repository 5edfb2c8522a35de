"""Fully connected networks for PINNs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_pde.derivatives.forward_laplacian import (ELEMENTWISE, elementwise, input_selector, layer_linear,
                                                         linear)
from lightning_pde.nn.embeddings import Embedding
from lightning_pde.quant.base import Quantizer, quantized
from lightning_pde.spec import Configurable
from lightning_pde.validation import integer_list

ACTIVATIONS = {"tanh": torch.tanh, "sin": torch.sin, "cos": torch.cos}


class MLP(nn.Module, Configurable):
    """Multilayer perceptron with a smooth activation and Xavier (Glorot) normal initialisation.

    The input and output sizes may be left out: the module that owns the network (e.g. `PINN`) sets them from its
    problem by calling :meth:`build`.

    Args:
        hidden: widths of the hidden layers, e.g. ``[32, 32, 32]``.
        activation: ``tanh``, ``sin`` or ``cos``.
        in_features: number of inputs; None to take it from the problem.
        out_features: number of outputs; None to take it from the problem.
        embedding: optional input embedding (``PeriodicEmbedding``, ``FourierFeatures``) before the first layer.
        quantizer: optional quantizer recipe (an object with ``convert(layer) -> layer``, registered under
            ``lightning_pde.quantizers``, e.g. ``SMXQuantizer``) applied to every layer when it is built.

    Shapes: (N, in_features) -> (N, out_features).
    """

    def __init__(self, hidden: Sequence[int] = (32, 32, 32), activation: str = "tanh",
                 in_features: int | None = None, out_features: int | None = None,
                 embedding: Embedding | None = None, quantizer: Quantizer | None = None) -> None:
        super().__init__()
        if quantizer is not None and not callable(getattr(quantizer, "convert", None)):
            raise ValueError(f"MLP: quantizer must have a convert(layer) method (e.g. SMXQuantizer), got "
                             f"{type(quantizer).__name__}")
        self.quantizer = quantizer
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        hidden = integer_list("MLP", "hidden", hidden)
        self.hidden = hidden
        self.activation = activation
        self._activation = ACTIVATIONS[activation]
        self.layers = nn.ModuleList()
        self.embedding = embedding
        self.in_features: int | None = None
        self.out_features: int | None = None
        if in_features is not None or out_features is not None:
            if in_features is None or out_features is None:
                raise ValueError("MLP: give both in_features and out_features, or neither")
            self.build(in_features, out_features)

    def build(self, in_features: int, out_features: int, input_names: Sequence[str] | None = None,
              periods: dict[str, float] | None = None) -> "MLP":
        """Create the layers for the given sizes (no-op when already built with the same sizes).

        `input_names` and `periods` (normalised period per periodic input) are passed on to the embedding."""
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MLP: {name} must be an integer >= 1, got {value!r}")
        if self.layers:
            if (self.in_features, self.out_features) != (in_features, out_features):
                raise ValueError(f"MLP: built for {self.in_features} inputs and {self.out_features} outputs, but "
                                 f"the problem has {in_features} inputs and {out_features} outputs")
            return self
        first = in_features
        if self.embedding is not None:
            names = list(input_names) if input_names is not None else [f"x{i}" for i in range(in_features)]
            first = self.embedding.build(names, dict(periods or {}))
        widths = [first, *self.hidden, out_features]
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            layer = self.make_layer(index, fan_in, fan_out)
            if self.quantizer is not None:
                # the first layer's input is the coordinates, which a recipe may keep at a higher precision
                convert = getattr(self.quantizer, "convert_input_layer", None) if index == 0 else None
                layer = (convert or self.quantizer.convert)(layer)
            self.layers.append(layer)
        self.in_features, self.out_features = in_features, out_features
        return self

    def make_layer(self, index: int, fan_in: int, fan_out: int) -> nn.Module:
        """Layer `index` (fan_in -> fan_out): Xavier-normal ``nn.Linear`` with zero bias; subclasses may differ."""
        layer = nn.Linear(fan_in, fan_out)
        nn.init.xavier_normal_(layer.weight)
        nn.init.zeros_(layer.bias)
        return layer

    def forward(self, x: Tensor) -> Tensor:
        if not self.layers:
            raise RuntimeError("MLP: call build(in_features, out_features) before using the network")
        if self.embedding is not None:
            x = self.embedding(x)
        for layer in self.layers[:-1]:
            x = self._activation(layer(x))
        return self.layers[-1](x)

    def forward_laplacian(self, x: Tensor, jacobian: Tensor | None = None, laplacian: Tensor | None = None,
                          laplacian_inputs: Sequence[int] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The output, its Jacobian and its partial Laplacian in one forward pass (the forward Laplacian, Li et al.
        2023, arXiv 2307.08066; rules in :mod:`lightning_pde.derivatives.forward_laplacian`).

        Derivatives are taken along d directions y of which x is a function (the owner's inputs before its input
        normalisation, say); `jacobian` and `laplacian` give that dependence.

        Args:
            x: the network's input, (N, in_features).
            jacobian: dx/dy, (N or 1, d, in_features); default the identity (y = x, d = in_features).
            laplacian: sum_{i in S} d^2 x / dy_i^2, (N or 1, in_features); default zero. Given per direction
                instead, d^2 x / dy_i^2 for i in S as (N or 1, |S|, in_features), the result is per direction too
                (the diagonal of the Hessian over S, for :class:`~lightning_pde.derivatives.SinglePass`).
            laplacian_inputs: the subset S, indices into the d directions; default all.

        Returns:
            u (N, out_features), du/dy (N, d, out_features), sum_{i in S} d^2 u / dy_i^2 (N, out_features).

        Raises:
            NotImplementedError: when the activation or the embedding cannot be propagated (naming it).
        """
        if not self.layers:
            raise RuntimeError("MLP: call build(in_features, out_features) before using the network")
        if self.activation not in ELEMENTWISE:
            raise NotImplementedError(f"MLP: the forward Laplacian knows the activations {sorted(ELEMENTWISE)}, "
                                      f"not {self.activation!r}")
        if jacobian is None:
            jacobian = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)[None]
        if laplacian is None:
            laplacian = x.new_zeros(1, x.shape[1])
        inputs = input_selector(laplacian_inputs, jacobian.shape[1])
        h = x
        if self.embedding is not None:
            h, jacobian, laplacian = self.embedding.forward_laplacian(h, jacobian, laplacian, inputs)
        for layer in self.layers[:-1]:
            h, jacobian, laplacian = elementwise(self.activation, *self._layer_laplacian(layer, h, jacobian, laplacian),
                                                 inputs)
        return self._layer_laplacian(self.layers[-1], h, jacobian, laplacian)

    @staticmethod
    def _layer_laplacian(layer: nn.Module, h: Tensor, jacobian: Tensor,
                         laplacian: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # a quantized layer's weight attribute holds the float (master) weights: propagating with it would bypass
        # the quantizer, so such a layer is differentiated as it computes
        if quantized(layer):
            return layer_linear(layer, h, jacobian, laplacian)
        return linear(h, jacobian, laplacian, layer.weight, layer.bias)

