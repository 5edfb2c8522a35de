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

from collections.abc import Callable, Sequence

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
        set of 2K + 1 evaluations."""
        half = self.evaluate()[1].shape[1] // 2
        return self._weighted([(slice(0, half), 1.0)]), self._weighted([(slice(half, 2 * half), 1.0)])

    def _weighted(self, parts: Sequence[tuple[slice, float]]) -> "SteinFields":
        """A view whose derivative estimates are sum_j w_j (the estimate over the pairs in slice_j), for equal-size
        slices and weights summing to 1 (every estimate is a mean of per-pair terms linear in the differences, so
        scaling a slice's differences by len(parts) w_j does it); f(x) and the context (domain, values, unknowns)
        are shared."""
        base, delta, var, odd, even = self.evaluate()
        n = len(parts)
        view = type(self)(self.net, self.x, self.input_names, self.output_names, self.engine)
        view._evaluated = (base, torch.cat([delta[:, part] for part, _ in parts], dim=1), var,
                           torch.cat([odd[:, part] * (n * w) for part, w in parts], dim=1),
                           torch.cat([even[:, part] * (n * w) for part, w in parts], dim=1))
        return self.share_context(view)

    def squared_residual(self, residual: Callable[[Fields], Tensor]) -> Tensor:
        """An unbiased estimate of r^2 at every point, r = `residual` of the smoothed network, for residuals at most
        quadratic in the estimated derivatives (|grad u|^2 in HJB, u_x u_y, u u_xx; f(x) itself is exact): the
        loss of :attr:`Stein.debias`, same shape as `residual`'s output.

        The K pairs are split in quarters a, b (first half h) and c, d (second half). For independent, equally
        distributed estimates D_a, D_b and r a polynomial of degree <= 2 in them,
        U_h = 2 r(D_h) - (r(D_a) + r(D_b)) / 2, with D_h = (D_a + D_b) / 2, has mean r(E D) exactly (the squares
        of D_a and D_b cancel, the cross term D_a D_b is unbiased); U_h U_{h'} over the two independent halves then
        has mean r^2. For a residual linear in the estimates U_h = r(D_h), the product of the two halves' residuals
        (Hu et al., arXiv 2311.15283). A third residual evaluation, along the line through D_a and D_b, checks the
        degree: a residual of degree 3 or more has no such estimator here and is refused.

        Raises:
            ValueError: for fewer than 4 sample pairs, or a residual not at most quadratic in the estimates.
        """
        k = self.evaluate()[1].shape[1]
        if k < 4:
            raise ValueError(f"Stein: the debiased loss splits the sample pairs in quarters and needs samples >= 4, "
                             f"got {k}")
        m = k // 4
        quarters = [slice(i * m, (i + 1) * m) for i in range(4)]
        estimates = []
        for a, b in (quarters[:2], quarters[2:]):
            r_a, r_b = residual(self._weighted([(a, 1.0)])), residual(self._weighted([(b, 1.0)]))
            r_h = residual(self._weighted([(a, 0.5), (b, 0.5)]))
            estimates.append(2 * r_h - (r_a + r_b) / 2)
            if not estimates[1:]:
                self._check_quadratic(residual, a, b, r_a, r_b, r_h)
        return estimates[0] * estimates[1]

    def _check_quadratic(self, residual: Callable[[Fields], Tensor], a: slice, b: slice, r_a: Tensor, r_b: Tensor,
                         r_h: Tensor) -> None:
        """Raise unless `residual` is at most quadratic along D(t) = (1 - t) D_a + t D_b: r(2) must equal the
        parabola through t = 0, 1/2, 1 (Lagrange weights 3, -8, 6), up to rounding."""
        with torch.no_grad():
            r_2 = residual(self._weighted([(a, -1.0), (b, 2.0)]))
            parabola = 3 * r_a - 8 * r_h + 6 * r_b
            scale = torch.stack([v.abs().max() for v in (r_a, r_b, r_h, r_2)]).max()
            if (r_2 - parabola).abs().max() > 1e-3 * scale + 1e-6:
                raise ValueError("Stein(debias=True): the residual is not at most quadratic in the estimated "
                                 "derivatives (e.g. a cube of a gradient); the debiased loss would be biased for it. "
                                 "Use debias=False (the plain loss, biased by the estimator's variance) or an exact "
                                 "engine (Autograd, Forward, ForwardLaplacian, SinglePass)")

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
            halves and the loss is the product of an unbiased residual estimate from each
            (:meth:`SteinFields.squared_residual`): for residuals linear in the estimated derivatives that is
            mean(r_hat_1 * r_hat_2) (Hu et al., arXiv 2311.15283); for residuals quadratic in them (HJB's
            |grad u|^2, whose plug-in estimate is biased by the gradient's variance) each half's estimate is
            corrected with its two quarters; higher degrees are refused. Same network evaluations. Needs
            samples >= 4 and ``PINN(fused=False)``.
    """

    fields_class = SteinFields

    def rows_per_point(self, n_inputs: int) -> int:
        return 2 * self.samples + 1

    def __init__(self, samples: int = 64, sigma: float = 0.01, time_sigma: float | None = None,
                 time_inputs: Sequence[str] = ("t",), diffquant: bool = False, debias: bool = False) -> None:
        self.samples = positive_int("Stein", "samples", samples)
        self.debias = boolean("Stein", "debias", debias)
        if self.debias and self.samples < 4:
            raise ValueError(f"Stein: debias=True splits the sample pairs in quarters and needs samples >= 4, "
                             f"got {samples}")
        self.sigma = positive_float("Stein", "sigma", sigma)
        self.time_sigma = self.sigma if time_sigma is None else positive_float("Stein", "time_sigma", time_sigma)
        self.time_inputs = tuple(name_list("Stein", "time_inputs", time_inputs))
        self.diffquant = boolean("Stein", "diffquant", diffquant)

    def fields(self, net: Network, x: Tensor, input_names: Sequence[str], output_names: Sequence[str]) -> Fields:
        return SteinFields(net, x, input_names, output_names, self)
