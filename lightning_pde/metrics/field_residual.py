"""Mean relative PDE residual of generated joint fields (B, 2, n, n): (a, u) of Poisson, (K, p) of Darcy."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torchmetrics import Metric


def _poisson(fields: Tensor) -> Tensor:
    from lightning_pde.data.poisson_fields import relative_residual

    return relative_residual(fields)


def _darcy(fields: Tensor) -> Tensor:
    from lightning_pde.data.darcy import darcy_relative_residual

    return darcy_relative_residual(fields)


#: per-sample relative residual of each field PDE, named as the data modules' ``pde`` attribute names them
FIELD_PDES: dict[str, Callable[[Tensor], Tensor]] = {"poisson": _poisson, "darcy": _darcy}


class FieldResidual(Metric):
    """Mean over samples of the relative residual of fields (B, 2, n, n) under the discrete operator of their data
    module:

    - ``poisson``: ||-Lap_h u - a||_2 / ||a||_2, channel 0 = a, channel 1 = u, the 5-point operator of
      :class:`~lightning_pde.data.PoissonFields` (zero Dirichlet boundary, h = 1/(n+1)).
    - ``darcy``: ||-div_h(K grad_h p) - 1||_2 / ||1||_2, channel 0 = K, channel 1 = p, the finite-volume operator of
      :class:`~lightning_pde.data.DarcyFlow` (K below 1e-3 counts as 1e-3: the harmonic face mean needs K > 0).

    Exact solves give about 1e-6 in float32.

    Args:
        pde: ``poisson`` or ``darcy``.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, pde: str = "poisson", **kwargs) -> None:
        super().__init__(**kwargs)
        if pde not in FIELD_PDES:
            raise ValueError(f"FieldResidual: pde must be one of {sorted(FIELD_PDES)}, got {pde!r}")
        self.pde = pde
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, fields: Tensor) -> None:
        if fields.ndim != 4 or fields.shape[1] != 2 or fields.shape[2] != fields.shape[3]:
            raise ValueError(f"FieldResidual: fields must be (B, 2, n, n), got {tuple(fields.shape)}")
        self.total += FIELD_PDES[self.pde](fields.detach().double()).sum()
        self.count += len(fields)

    def compute(self) -> Tensor:
        return self.total / self.count
