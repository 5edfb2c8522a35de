"""Input embeddings applied before the first layer of a network.

An embedding is built by the network once the module knows the problem: :meth:`Embedding.build` receives the input
names and, for inputs in which the problem is periodic, the period *in the network's normalised coordinates*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_pde.derivatives.forward_laplacian import InputSelector, concatenate, elementwise
from lightning_pde.spec import Configurable
from lightning_pde.validation import boolean, integer_at_least, name_list, positive_float, positive_int


class Embedding(nn.Module, Configurable):
    """Base class: maps (N, n_inputs) to (N, out_features) once built."""

    out_features: int

    def build(self, input_names: Sequence[str], periods: dict[str, float]) -> int:
        """Prepare for these inputs; `periods` maps periodic input names to their normalised period.
        Returns the number of features the embedding produces."""
        raise NotImplementedError

    def forward_laplacian(self, x: Tensor, jacobian: Tensor, laplacian: Tensor,
                          inputs: InputSelector) -> tuple[Tensor, Tensor, Tensor]:
        """The features, their Jacobian and partial Laplacian, for the forward Laplacian (see
        :meth:`lightning_pde.nn.MLP.forward_laplacian`): x (N, n_inputs), jacobian (N or 1, d, n_inputs),
        laplacian (N or 1, n_inputs) -> (N, out_features), (N, d, out_features), (N, out_features)."""
        raise NotImplementedError(f"{type(self).__name__} has no forward_laplacian, so the ForwardLaplacian engine "
                                  "cannot propagate through it; use the Autograd engine")


class PeriodicEmbedding(Embedding):
    """Replace each periodic input x by (cos(2 pi x / P), sin(2 pi x / P)), so the network is exactly periodic in it
    and periodic boundary conditions hold by construction (Dong & Ni 2021, arXiv 2007.07442).

    Args:
        inputs: names of the inputs to embed; each must be periodic in the problem (its ``periodic_inputs``).
        harmonics: number of harmonics k = 1..harmonics used per periodic input.
    """

    def __init__(self, inputs: Sequence[str] = ("x",), harmonics: int = 1) -> None:
        super().__init__()
        self.inputs = name_list("PeriodicEmbedding", "inputs", inputs)
        self.harmonics = positive_int("PeriodicEmbedding", "harmonics", harmonics)

    def build(self, input_names: Sequence[str], periods: dict[str, float]) -> int:
        not_periodic = [name for name in self.inputs if name not in periods]
        if not_periodic:
            raise ValueError(f"PeriodicEmbedding: input(s) {not_periodic} are not periodic in this problem; "
                             f"periodic inputs: {sorted(periods) or 'none'}")
        unknown = [name for name in self.inputs if name not in input_names]
        if unknown:
            raise ValueError(f"PeriodicEmbedding: unknown input(s) {unknown}; inputs are {tuple(input_names)}")
        self.periodic_index = [list(input_names).index(name) for name in self.inputs]
        self.other_index = [i for i in range(len(input_names)) if i not in self.periodic_index]
        angular = [2 * math.pi * k / periods[name] for name in self.inputs for k in range(1, self.harmonics + 1)]
        # float64 so that the period stays exact after .double(); cast to the input's dtype on use.
        self._angular = angular
        self.register_buffer("angular", torch.tensor(angular, dtype=torch.float64), persistent=False)
        self.out_features = len(self.other_index) + 2 * len(angular)
        return self.out_features

    def _apply(self, fn, recurse: bool = True):
        # .float() would round the frequencies for good; keep them float64 (exact) through any cast or move
        super()._apply(fn, recurse)
        if hasattr(self, "_angular"):
            self.angular = torch.tensor(self._angular, dtype=torch.float64, device=self.angular.device)
        return self

    def forward(self, x: Tensor) -> Tensor:
        periodic = x[:, self.periodic_index].repeat_interleave(self.harmonics, dim=1) * self.angular.to(x.dtype)
        return torch.cat([x[:, self.other_index], torch.cos(periodic), torch.sin(periodic)], dim=1)

    def forward_laplacian(self, x: Tensor, jacobian: Tensor, laplacian: Tensor,
                          inputs: InputSelector) -> tuple[Tensor, Tensor, Tensor]:
        def angles(features: Tensor) -> Tensor:  # linear in x, so applied alike to value, Jacobian and Laplacian
            return features[..., self.periodic_index].repeat_interleave(self.harmonics, dim=-1) * angular

        angular = self.angular.to(x.dtype)
        periodic = (angles(x), angles(jacobian), angles(laplacian))
        return concatenate([(x[:, self.other_index], jacobian[..., self.other_index], laplacian[..., self.other_index]),
                            elementwise("cos", *periodic, inputs), elementwise("sin", *periodic, inputs)])


class FourierFeatures(Embedding):
    """Random Fourier features [cos(2 pi B x), sin(2 pi B x)] with fixed B ~ N(0, scale^2) (Tancik et al. 2020,
    arXiv 2006.10739; for PINNs Wang, Wang & Perdikaris 2021, arXiv 2012.10047), against spectral bias.

    Args:
        n_features: number of frequencies (the embedding has 2 * n_features outputs).
        scale: standard deviation of the frequencies, in cycles per unit of normalised input.
        keep_inputs: also pass the raw inputs through.
        seed: seed of B, so a rebuilt network (e.g. from a checkpoint) has the same features.
    """

    def __init__(self, n_features: int = 64, scale: float = 1.0, keep_inputs: bool = True, seed: int = 0) -> None:
        super().__init__()
        self.n_features = positive_int("FourierFeatures", "n_features", n_features)
        self.scale = positive_float("FourierFeatures", "scale", scale)
        self.keep_inputs = boolean("FourierFeatures", "keep_inputs", keep_inputs)
        self.seed = integer_at_least("FourierFeatures", "seed", seed, 0)

    def build(self, input_names: Sequence[str], periods: dict[str, float]) -> int:
        generator = torch.Generator().manual_seed(self.seed)
        frequencies = torch.randn(len(input_names), self.n_features, generator=generator) * self.scale
        self.register_buffer("frequencies", 2 * math.pi * frequencies)
        self.out_features = 2 * self.n_features + (len(input_names) if self.keep_inputs else 0)
        return self.out_features

    def forward(self, x: Tensor) -> Tensor:
        projected = x @ self.frequencies
        features = [torch.cos(projected), torch.sin(projected)]
        return torch.cat(([x] if self.keep_inputs else []) + features, dim=1)

    def forward_laplacian(self, x: Tensor, jacobian: Tensor, laplacian: Tensor,
                          inputs: InputSelector) -> tuple[Tensor, Tensor, Tensor]:
        projected = (x @ self.frequencies, jacobian @ self.frequencies, laplacian @ self.frequencies)
        features = [elementwise("cos", *projected, inputs), elementwise("sin", *projected, inputs)]
        return concatenate(([(x, jacobian, laplacian)] if self.keep_inputs else []) + features)
