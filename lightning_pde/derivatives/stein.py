"""Stein's-estimator derivatives: gradient, Hessian entries and Laplacian of the Gaussian-smoothed network from
forward passes only (He et al. 2023, arXiv 2202.09340; Lu et al. 2025, arXiv 2512.09202).

With u_sigma(x) = E_delta[f(x + delta)], delta ~ N(0, diag(sigma^2)), Stein's identity gives derivatives of u_sigma as
expectations of f alone. This engine uses K antithetic pairs +-delta_k and the control variate f(x) (both keep the
estimators unbiased, since E[delta] = 0 and E[delta_i delta_j - sigma_i^2 [i=j]] = 0, and cut their variance):

    d u / dx_i          ~ (1/K) sum_k delta_ki (f(x + delta_k) - f(x - delta_k)) / (2 sigma_i^2)
    d2 u / dx_i dx_j    ~ (1/K) sum_k (delta_ki delta_kj - sigma_i^2 [i=j]) / (sigma_i^2 sigma_j^2)
                                    * (f(x + delta_k) + f(x - delta_k) - 2 f(x)) / 2
    Laplacian over S    ~ the sum of the pure second-derivative estimates over i in S (one weighted mean).

2K + 1 network evaluations per point and no higher-order automatic differentiation: the loss reaches the parameters
by one ordinary backward pass. Values (``f["u"]``) are the network itself, f(x); the smoothing bias of the
derivatives is O(sigma^2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_pde.derivatives.base import DerivativeEngine, Fields, Network
from lightning_pde.quant.diffquant import diffquant_differences, naive_differences
from lightning_pde.validation import boolean, name_list, positive_float, positive_int


class SteinFields(Fields):
    """Fields by Stein's estimator; the 2K + 1 evaluations run once, on first use, and serve every derivative.

    Args:
        net: the network (N, d) -> (N, n_outputs); with ``diffquant`` a :class:`~lightning_pde.modules.PINN` over
            an MLP without hard constraints.
        x: the points (N, d).
        input_names: names of the d inputs.
        output_names: names of the outputs.
        engine: the :class:`Stein` engine holding samples, sigmas and the DiffQuant switch.

    Raises:
        NotImplementedError: for derivatives of order three or more.
    """

    def __init__(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str],
                 engine: "Stein | None" = None) -> None:
        super().__init__(net, x, input_names, output_names)
        self.engine = engine if engine is not None else Stein()
        self._evaluated: tuple[Tensor, Tensor, Tensor, Tensor, Tensor] | None = None

    def at(self, x: Tensor) -> Fields:
        return type(self)(self.net, x, self.input_names, self.output_names, self.engine)

    def halves(self) -> tuple["SteinFields", "SteinFields"]:
        """Two fields over the first and the second half of the K sample pairs: independent estimates from the one
        set of 2K + 1 evaluations (see :attr:`Stein.debias`)."""
        base, delta, var, odd, even = self.evaluate()
        half = delta.shape[1] // 2
        out = []
        for part in (slice(0, half), slice(half, 2 * half)):
            view = type(self)(self.net, self.x, self.input_names, self.output_names, self.engine)
            view._evaluated = (base, delta[:, part], var, odd[:, part], even[:, part])
            out.append(view)
        return out[0], out[1]

    def evaluate(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(f(x) (N, m), delta (N, K, d), sigma^2 (d,), f(x+delta) - f(x-delta), f(x+delta) + f(x-delta) - 2 f(x),
        the last two (N, K, m))."""
        if self._evaluated is None:
            e = self.engine
            sigma = torch.tensor([e.time_sigma if name in e.time_inputs else e.sigma for name in self.input_names],
                                 dtype=self.x.dtype, device=self.x.device)
            delta = torch.randn(self.x.shape[0], e.samples, self.x.shape[1], dtype=self.x.dtype,
                                device=self.x.device) * sigma
            if e.diffquant:
                base, (plus, minus) = self._diffquant(delta)
            else:
                self._refuse_quantized()
                base, (plus, minus) = naive_differences(self.net, self.x, [delta, -delta])
            self._evaluated = (base, delta, sigma.square(), plus - minus, plus + minus)
        return self._evaluated

    def _refuse_quantized(self) -> None:
        from lightning_pde.quant.base import has_quantized_layers

        if isinstance(self.net, torch.nn.Module) and has_quantized_layers(self.net):
            # x + delta quantized with a block scale set by |x| ~ 1 rounds delta ~ sigma away: the differences, and
            # so every derivative, become quantization noise (INT8 SMX, sigma = 0.01: a Laplacian 10x off)
            raise ValueError("Stein(diffquant=False) on a quantized network: quantizing x + delta rounds the "
                             "perturbations away, so the derivatives are quantization noise; use "
                             "Stein(diffquant=True), or an exact engine (Autograd, Forward, ForwardLaplacian, "
                             "SinglePass)")

    def _diffquant(self, delta: Tensor) -> tuple[Tensor, list[Tensor]]:
        net = self.net
        inner = getattr(net, "net", None)
        if inner is None or not hasattr(net, "input_scale"):
            raise ValueError(f"Stein(diffquant=True): the network must be a PINN over an MLP, got {type(net).__name__}")
        if getattr(net, "hard_constraints", False):
            raise ValueError("Stein(diffquant=True): the difference path cannot pass a hard-constraint output "
                             "transform; use hard_constraints=False or diffquant=False")
        scale = net.input_scale.to(self.x.dtype)
        return diffquant_differences(inner, (self.x - net.input_center) * scale, [delta * scale, -delta * scale])

    def partial(self, output: int, inputs: tuple[int, ...]) -> Tensor:
        base, delta, var, odd, even = self.evaluate()
        if not inputs:
            return base[:, output]
        if len(inputs) == 1:
            i = inputs[0]
            return (delta[:, :, i] * odd[:, :, output]).mean(dim=1) / (2 * var[i])
        if len(inputs) == 2:
            i, j = inputs
            weight = delta[:, :, i] * delta[:, :, j] - (var[i] if i == j else 0.0)
            return (weight * even[:, :, output]).mean(dim=1) / (2 * var[i] * var[j])
        raise NotImplementedError(f"Stein: derivatives of order {len(inputs)} are not estimated (orders 1 and 2 are)")

    def grad(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        k, indices = self.indices(output, inputs)
        _, delta, var, odd, _ = self.evaluate()
        return (delta[:, :, indices] * odd[:, :, k, None]).mean(dim=1) / (2 * var[indices])

    def laplacian(self, output: str = "u", inputs: Sequence[str] | None = None) -> Tensor:
        k, indices = self.indices(output, inputs)
        _, delta, var, _, even = self.evaluate()
        weight = ((delta[:, :, indices].square() - var[indices]) / var[indices].square()).sum(dim=2)
        return (weight * even[:, :, k]).mean(dim=1) / 2


class Stein(DerivativeEngine):
    """Derivative engine by Stein's estimator of the Gaussian-smoothed network (forward passes only); see the module
    docstring for the formulas. Serves every problem through :class:`~lightning_pde.derivatives.base.Fields`.

    Args:
        samples: antithetic pairs K per point (2K + 1 network evaluations per point), >= 1.
        sigma: standard deviation of the Gaussian smoothing in the space inputs, > 0 (He et al.: 0.01).
        time_sigma: standard deviation along the inputs named in `time_inputs`, > 0; None means `sigma`.
        time_inputs: names of the inputs smoothed with `time_sigma`.
        diffquant: carry f(x) and the differences f(x +- delta) - f(x) through the layers separately (DiffQuant,
            arXiv 2512.09202), so a quantized network does not round the perturbations away; needs a PINN over an
            MLP/TTMLP without hard constraints.
        debias: make the loss an unbiased estimate of the squared residual. The mean of r_hat^2 is r^2 plus the
            estimator's variance, and that variance (growing with the curvature and with d / K) acts as a penalty
            that pulls the solution away from the PDE's. With debias the K pairs are split into two independent
            halves and the loss is mean(r_hat_1 * r_hat_2), whose mean is r^2 for residuals linear in the estimated
            derivatives (Hu et al., arXiv 2311.15283); same cost. Needs samples >= 2 and ``PINN(fused=False)``.
    """

    fields_class = SteinFields

    def rows_per_point(self, n_inputs: int) -> int:
        return 2 * self.samples + 1

    def __init__(self, samples: int = 64, sigma: float = 0.01, time_sigma: float | None = None,
                 time_inputs: Sequence[str] = ("t",), diffquant: bool = False, debias: bool = False) -> None:
        self.samples = positive_int("Stein", "samples", samples)
        self.debias = boolean("Stein", "debias", debias)
        if self.debias and self.samples < 2:
            raise ValueError(f"Stein: debias=True splits the sample pairs in two halves and needs samples >= 2, "
                             f"got {samples}")
        self.sigma = positive_float("Stein", "sigma", sigma)
        self.time_sigma = self.sigma if time_sigma is None else positive_float("Stein", "time_sigma", time_sigma)
        self.time_inputs = tuple(name_list("Stein", "time_inputs", time_inputs))
        self.diffquant = boolean("Stein", "diffquant", diffquant)

    def fields(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> Fields:
        return SteinFields(net, x, input_names, output_names, self)
