"""A PINN's loss as a residual vector, the closure :class:`~lightning_pde.optimizers.GaussNewton` takes."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from lightning_pde.optimizers.gauss_newton import residual_jacobian


class _ConditionResidual(nn.Module):
    """One condition's residual at one point: (d + k,) -> (m,), for vmap over points."""

    def __init__(self, pinn: nn.Module, name: str) -> None:
        super().__init__()
        self.pinn, self.name = pinn, name

    def forward(self, row: Tensor) -> Tensor:
        cond = self.pinn.conditions[self.name]
        x, values = cond.split(row[None])
        return cond.residual(self.pinn.fields(x, values)).reshape(-1)


class PINNResiduals:
    """The residuals of a PINN's conditions at fixed points as one vector r (R,) with sum r^2 equal to the PINN's
    loss sum_c w_c mean_i res_{c,i}^2: the rows sqrt(w_c / N_c) res_c of every condition c, concatenated in the
    order of ``pinn.conditions``. Calling it returns r (with its autograd graph), so it is a closure for
    :class:`~lightning_pde.optimizers.GaussNewton`; ``jacobian(params)`` returns (r, J (R, n)) with the columns of
    J in the order of `params`, which GaussNewton calls instead of differentiating r itself.

    The Jacobian is computed point by point (``torch.func``: vmap over points of the reverse-mode Jacobian of one
    point's residual), tens of times faster than one backward pass per row, where the derivative engine composes
    with ``torch.func`` (``Forward``) and each residual row depends on its own point only; this is checked against
    the batched residual on the first call. Elsewhere (``Autograd``, whose ``torch.autograd.grad`` torch.func
    refuses, or a residual that couples points) it falls back to
    :func:`~lightning_pde.optimizers.gauss_newton.residual_jacobian`.

    Args:
        pinn: a :class:`~lightning_pde.modules.PINN` (or anything with its ``conditions``, ``fields`` and
            ``loss_weights``), without weighted reductions (CausalWeighting's loss is not a plain sum of squares).
        points: ``{condition name: (N_c, n_inputs [+ k])}``, as the collocation data module gives them.
    """

    def __init__(self, pinn: nn.Module, points: dict[str, Tensor]) -> None:
        if getattr(pinn, "reductions", None):
            raise ValueError(f"PINNResiduals: conditions {sorted(pinn.reductions)} have weighted reductions, so "
                             "the loss is not a sum of squared residuals")
        missing = sorted(set(pinn.conditions) - set(points))
        if missing:
            raise ValueError(f"PINNResiduals: no points for condition(s) {missing}")
        self.pinn, self.points = pinn, points
        #: whether the point-by-point Jacobian applies; None until the first jacobian() call decides
        self.pointwise: bool | None = None

    def _scale(self, name: str, rows: int) -> float:
        return math.sqrt(self.pinn.loss_weights[name] / rows)

    def __call__(self) -> Tensor:
        parts = []
        for name, cond in self.pinn.conditions.items():
            x, values = cond.split(self.points[name])
            residual = cond.residual(self.pinn.fields(x, values)).reshape(-1)
            parts.append(residual * self._scale(name, residual.numel()))
        return torch.cat(parts)

    def _pointwise_jacobian(self, params: list[Tensor]) -> tuple[Tensor, Tensor]:
        names = {id(p): name for name, p in self.pinn.named_parameters()}
        unknown = [i for i, p in enumerate(params) if id(p) not in names]
        if unknown:
            raise ValueError(f"PINNResiduals: parameters {unknown} of the optimizer are not the PINN's")
        keys = ["pinn." + names[id(p)] for p in params]
        values = {key: p.detach() for key, p in zip(keys, params)}
        rows, blocks = [], []
        for name in self.pinn.conditions:
            module = _ConditionResidual(self.pinn, name)

            def residual(p: dict[str, Tensor], row: Tensor, module: nn.Module = module) -> Tensor:
                return functional_call(module, p, (row,), strict=False)

            points = self.points[name]
            value = vmap(residual, in_dims=(None, 0))(values, points)  # (N, m)
            jac = vmap(jacrev(residual), in_dims=(None, 0))(values, points)  # {key: (N, m, *shape)}
            scale = self._scale(name, value.numel())
            rows.append(value.reshape(-1) * scale)
            blocks.append(torch.cat([jac[key].reshape(value.numel(), -1) for key in keys], dim=1) * scale)
        return torch.cat(rows), torch.cat(blocks)

    def jacobian(self, params: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(r (R,), J (R, n)) at the current parameters, detached; J's columns follow `params` (flattened)."""
        if self.pointwise is not False:
            try:
                r, jac = self._pointwise_jacobian(params)
            except (RuntimeError, NotImplementedError):  # the engine or the residual does not compose with vmap
                self.pointwise = False
            else:
                if self.pointwise is None:
                    with torch.enable_grad():
                        batched = self().detach()
                    # rounding differs between the two paths; a residual coupling points differs at its own size
                    tolerance = torch.finfo(batched.dtype).eps ** 0.5 * float(batched.abs().max())
                    self.pointwise = bool((r - batched).abs().max() <= tolerance)
                if self.pointwise:
                    return r.detach(), jac.detach()
        with torch.enable_grad():
            r = self()
        return r.detach(), residual_jacobian(r, params).detach()
