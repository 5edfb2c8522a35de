"""Collocation down-sampling of S2GPT-PINN (Ji, Chen & Koohy, arXiv 2506.15687): empirical interpolation picks
about 2n - 1 "magic" residual points for n neurons, and the online loss runs on those points only."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from lightning_pde.gptpinn import batched_conditions, eim_step
from lightning_pde.validation import name_list, nonnegative_float


class CollocationDownsampling(pl.Callback):
    """Adds S2GPT-PINN's sparse online loss to a :class:`~lightning_pde.modules.GPTPINN`.

    After neuron n is added, an EIM step on its values at the residual grid (float64) adds the solution magic point
    x^u_n; after the greedy stage picks mu_{n+1}, an EIM step on the reduced residual there adds x^r_n. The online
    loss is then the mean squared PDE residual at these 2n - 1 points plus ``sum_to_one_weight * (sum_i c_i - 1)^2``,
    which replaces initial/boundary terms that do not depend on the parameter (an affine combination of neurons
    satisfies them, S2GPT Sec. 3); conditions named in `keep_conditions` stay as full terms (e.g. Allen-Cahn). The
    penalty is applied only when a replaced condition is inhomogeneous (nonzero residual at u = 0, e.g. Burgers'
    u(x, 0) = -sin(pi x)): with homogeneous data (Helmholtz's u = 0 on the boundary) every combination satisfies
    it, so it says nothing about sum c, and the loss is the magic-point residual alone, as in the S2GPT Helmholtz
    code. The warm start is the nearest selected neuron's interpolation coefficients.

    Args:
        sum_to_one_weight: weight of the sum-to-one penalty (>= 0).
        keep_conditions: non-PDE conditions kept as full loss terms instead of the penalty.
    """

    def __init__(self, sum_to_one_weight: float = 1.0, keep_conditions: list[str] | None = None) -> None:
        self.sum_to_one_weight = nonnegative_float("CollocationDownsampling", "sum_to_one_weight", sum_to_one_weight)
        self.keep_conditions = (name_list("CollocationDownsampling", "keep_conditions", keep_conditions)
                                if keep_conditions not in (None, [], ()) else [])

    def setup(self, trainer: pl.Trainer, module: Any, stage: str) -> None:
        unknown = sorted(set(self.keep_conditions) - set(module.conditions))
        if unknown:
            raise ValueError(f"CollocationDownsampling: keep_conditions has unknown condition(s) {unknown}; "
                             f"the problem has {sorted(module.conditions)}")
        module.downsampler = self
        module.sparse = {"sum_to_one_weight": self.sum_to_one_weight, "keep_conditions": list(self.keep_conditions)}

    def neuron_added(self, module: Any) -> None:
        """Solution EIM step for each neuron not yet interpolated (resumes after a restart)."""
        while len(module.magic_u) < module.n_neurons:
            i = len(module.magic_u)
            snapshot = module.columns("pde")["u"][:, i]
            module.eim_u, module.magic_u = eim_step(module.eim_u, module.magic_u, snapshot, exclude=module.magic_r)

    def residual_selected(self, module: Any, params: torch.Tensor) -> None:
        """Residual EIM step on the reduced PDE residual at the selected parameter, over the whole grid."""
        c = module.solve(params, warn=False)
        conditions = batched_conditions(module.problem, params)
        pde = next(cond for cond in conditions.values() if cond.kind == "pde")
        residual = pde.residual(module._fields("pde", c)).reshape(-1)
        module.eim_r, module.magic_r = eim_step(module.eim_r, module.magic_r, residual, exclude=module.magic_u)

    def state_dict(self) -> dict[str, Any]:
        return {"sum_to_one_weight": self.sum_to_one_weight, "keep_conditions": list(self.keep_conditions)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sum_to_one_weight = float(state_dict.get("sum_to_one_weight", self.sum_to_one_weight))
        self.keep_conditions = list(state_dict.get("keep_conditions", self.keep_conditions))
