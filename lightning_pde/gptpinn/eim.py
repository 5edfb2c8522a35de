"""One step of the empirical interpolation method (Barrault et al. 2004; the magic points of S2GPT-PINN,
arXiv 2506.15687, Sec. 3), in float64."""

from __future__ import annotations

import torch
from torch import Tensor


def eim_step(basis: Tensor, indices: Tensor, snapshot: Tensor, exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Add `snapshot` (N,) to an EIM basis (N, k) with magic point `indices` (k,).

    The interpolant of the snapshot at the old magic points is subtracted (unit lower-triangular solve), the new
    magic point is the argmax of |remainder| (outside `exclude`), and the remainder scaled to 1 there is the new basis
    column. Returns (basis (N, k+1), indices (k+1,)).
    """
    snapshot = snapshot.to(torch.float64)
    basis = basis.to(torch.float64)
    remainder = snapshot
    if len(indices):
        coeff = torch.linalg.solve_triangular(basis[indices], snapshot[indices].unsqueeze(-1), upper=False,
                                              unitriangular=True).squeeze(-1)
        remainder = snapshot - basis @ coeff
    score = remainder.abs().clone()
    taken = torch.cat([indices, exclude]) if exclude is not None else indices
    score[taken.long()] = -1.0
    new = int(score.argmax())
    pivot = remainder[new]
    if pivot == 0:
        pivot = basis.new_tensor(1.0)
    return (torch.cat([basis, (remainder / pivot).unsqueeze(-1)], dim=1),
            torch.cat([indices, indices.new_tensor([new])]))
