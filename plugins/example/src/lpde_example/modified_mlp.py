"""The "modified MLP" of Wang, Teng & Perdikaris (2021, arXiv 2001.04536, Sec. 3.3): two encoders of the input
gate every hidden layer, which helps PINNs with stiff gradient flows."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_pde.spec import Configurable
from lightning_pde.validation import positive_int


class ModifiedMLP(nn.Module, Configurable):
    """U = tanh(x W_u + b_u), V = tanh(x W_v + b_v); H_1 = tanh(x W_1 + b_1);
    H_{k+1} = (1 - Z_k) * U + Z_k * V with Z_k = tanh(H_k W_{k+1} + b_{k+1}); output H_L W + b.

    Like lightning-pde's `MLP`, the sizes may be left to the owning module, which calls :meth:`build` with the
    problem's input and output counts.

    Args:
        width: width of every hidden layer (all must match for the gating).
        depth: number of hidden layers, >= 1.
        in_features: number of inputs; None to take it from the problem.
        out_features: number of outputs; None to take it from the problem.

    Shapes: (N, in_features) -> (N, out_features).
    """

    def __init__(self, width: int = 32, depth: int = 3, in_features: int | None = None,
                 out_features: int | None = None) -> None:
        super().__init__()
        self.width = positive_int("ModifiedMLP", "width", width)
        self.depth = positive_int("ModifiedMLP", "depth", depth)
        self.encoders = nn.ModuleList()
        self.layers = nn.ModuleList()
        self.in_features: int | None = None
        self.out_features: int | None = None
        if in_features is not None or out_features is not None:
            if in_features is None or out_features is None:
                raise ValueError("ModifiedMLP: give both in_features and out_features, or neither")
            self.build(in_features, out_features)

    def build(self, in_features: int, out_features: int, input_names: Sequence[str] | None = None,
              periods: dict[str, float] | None = None) -> "ModifiedMLP":
        """Create the layers for the given sizes (the owner's protocol, as `MLP.build`; no embedding, so
        `input_names` and `periods` are unused)."""
        positive_int("ModifiedMLP", "in_features", in_features)
        positive_int("ModifiedMLP", "out_features", out_features)
        if self.layers:
            if (self.in_features, self.out_features) != (in_features, out_features):
                raise ValueError(f"ModifiedMLP: built for {self.in_features} inputs and {self.out_features} "
                                 f"outputs, but the problem has {in_features} inputs and {out_features} outputs")
            return self
        self.encoders.extend(self._linear(in_features, self.width) for _ in range(2))
        self.layers.append(self._linear(in_features, self.width))
        self.layers.extend(self._linear(self.width, self.width) for _ in range(self.depth - 1))
        self.layers.append(self._linear(self.width, out_features))
        self.in_features, self.out_features = in_features, out_features
        return self

    @staticmethod
    def _linear(fan_in: int, fan_out: int) -> nn.Linear:
        layer = nn.Linear(fan_in, fan_out)
        nn.init.xavier_normal_(layer.weight)
        nn.init.zeros_(layer.bias)
        return layer

    def forward(self, x: Tensor) -> Tensor:
        if not self.layers:
            raise RuntimeError("ModifiedMLP: call build(in_features, out_features) before using the network")
        u, v = (torch.tanh(encoder(x)) for encoder in self.encoders)
        h = torch.tanh(self.layers[0](x))
        for layer in self.layers[1:-1]:
            z = torch.tanh(layer(h))
            h = (1 - z) * u + z * v
        return self.layers[-1](h)
