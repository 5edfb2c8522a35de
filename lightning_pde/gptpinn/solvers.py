"""Batched online solvers for the reduced coefficients c (M, n): every parameter's least-squares problem
min_c |r(c)|^2 at once (GPT-PINN, arXiv 2303.14878, Sec. 2.3 uses plain gradient descent; here also Adam,
Levenberg-Marquardt and a direct least-squares solve for linear PDEs)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

SOLVERS = ("gd", "adam", "gauss_newton", "lstsq")

Residual = Callable[[Tensor], Tensor]

#: Gauss-Newton stops early once every row's last step changed its loss (or c) by less than this, relatively
GN_RTOL = 1e-10
#: initial Levenberg-Marquardt damping, relative to diag(J^T J)
GN_DAMPING = 1e-7


def _loss(residual: Residual, c: Tensor) -> Tensor:
    return residual(c).square().sum(-1)


def jacobian(residual: Residual, c: Tensor, generic: bool = False) -> tuple[Tensor, Tensor]:
    """(r (M, R), J (M, R, n)) by forward mode, one tangent per coefficient, all parameters together; a residual
    with its own ``jacobian(c)`` attribute (GPTPINN's chain rule through the fields) uses that unless `generic`."""
    if not generic and callable(getattr(residual, "jacobian", None)):
        return residual.jacobian(c)
    n = c.shape[1]
    tangents = torch.eye(n, dtype=c.dtype, device=c.device).unsqueeze(1).expand(n, *c.shape)
    r = residual(c)
    jac = torch.func.vmap(lambda v: torch.func.jvp(residual, (c,), (v,))[1])(tangents)
    return r, jac.permute(1, 2, 0)


def normal_equations(residual: Residual, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(r (M, R), J^T J (M, n, n), J^T r (M, n)): the residual's own ``normal_equations(c)`` where it has one
    (GPTPINN's, which never forms the full J), otherwise from :func:`jacobian`."""
    if callable(getattr(residual, "normal_equations", None)):
        return residual.normal_equations(c)
    return normal_from_jacobian(*jacobian(residual, c))


def normal_from_jacobian(r: Tensor, jac: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(r, J^T J, J^T r) from r (M, R) and J (M, R, n)."""
    jt = jac.transpose(1, 2)
    return r, jt @ jac, (jt @ r.unsqueeze(-1)).squeeze(-1)


def gd_step_limit(residual: Residual, c: Tensor) -> Tensor:
    """Largest stable gradient-descent learning rate (M,) at c: the loss |r|^2 has the Gauss-Newton Hessian
    2 J^T J, so c <- c - lr grad converges near c only for lr < 1 / lambda_max(J^T J)."""
    _, jac = jacobian(residual, c)
    top = torch.linalg.eigvalsh(jac.transpose(1, 2) @ jac)[:, -1]
    return 1.0 / top.clamp_min(1e-300)


def check_gd_step(residual: Residual, c: Tensor, lr: float) -> None:
    """Warn when `lr` is above the stability limit at the start for some parameters: ``gd`` then diverges. The
    papers' learning rates (0.02-0.05) fit their neurons' scales; derivative columns of large magnitude (Helmholtz
    u_xx ~ (a pi)^2 u, Burgers' shock layers, which the GPT-PINN Burgers code zeroes) push the limit far below."""
    limit = gd_step_limit(residual, c)
    bad = lr >= limit
    if bad.any():
        warnings.warn(f"solve_batched: gd learning rate {lr:g} is above the stability limit 1/lambda_max(J^T J) "
                      f"(smallest {float(limit.min()):.3g}, median {float(limit.median()):.3g}) for {int(bad.sum())} "
                      f"of {len(c)} parameters; plain gradient descent will diverge there. Use lr below the limit, "
                      "or adam / gauss_newton / lstsq", stacklevel=3)


def solve_batched(residual: Residual, c0: Tensor, solver: str = "gauss_newton", steps: int = 20,
                  lr: float = 1e-2) -> tuple[Tensor, Tensor]:
    """Minimise |residual(c)|^2 for each row of c. `residual` maps (M, n) -> (M, R) with loss = sum of squares.
    Returns (c (M, n), loss (M,)). ``gauss_newton`` runs at most `steps` iterations and stops once all rows have
    converged (see ``GN_RTOL``); ``gd``/``adam`` run exactly `steps`."""
    if solver not in SOLVERS:
        raise ValueError(f"solve_batched: solver must be one of {SOLVERS}, got {solver!r}")
    c = c0.detach().clone()
    converged_gn = None
    if solver == "lstsq":
        # r(c) = r(0) + J c exactly for a linear PDE.
        r0, jac = jacobian(residual, torch.zeros_like(c))
        c = torch.linalg.lstsq(jac, -r0.unsqueeze(-1), driver="gelsd" if jac.device.type == "cpu" else None
                               ).solution.squeeze(-1)
    elif solver == "gauss_newton":
        damping = c.new_full((len(c),), GN_DAMPING)
        loss = _loss(residual, c)
        eye = torch.eye(c.shape[1], dtype=c.dtype, device=c.device)
        for _ in range(steps):
            if converged_gn is not None and bool(converged_gn.all()):
                break  # every row has stalled at a near-Gauss-Newton step: the rest would change nothing
            _, jtj, jtr = normal_equations(residual, c)
            scale = torch.diagonal(jtj, dim1=1, dim2=2).clamp_min(1e-12)
            step = torch.linalg.solve(jtj + damping[:, None, None] * torch.diag_embed(scale) + 1e-14 * eye,
                                      -jtr.unsqueeze(-1)).squeeze(-1)
            trial = c + step
            trial_loss = _loss(residual, trial)
            better = trial_loss < loss
            # converged: an (almost undamped) step that changes the loss or c only at rounding level
            stalled = ((trial_loss - loss).abs() <= GN_RTOL * loss) | (
                step.norm(dim=1) <= GN_RTOL * c.norm(dim=1)) | (loss <= 1e-300)
            converged_gn = stalled & (damping <= 1.0)
            c = torch.where(better[:, None], trial, c)
            loss = torch.where(better, trial_loss, loss)
            damping = torch.where(better, damping / 3, damping * 4).clamp(1e-12, 1e8)
    else:
        if solver == "gd":
            check_gd_step(residual, c, lr)
        c.requires_grad_(True)
        optimizer = torch.optim.Adam([c], lr=lr) if solver == "adam" else None
        for _ in range(steps):
            with torch.enable_grad():
                total = _loss(residual, c).sum()  # rows are independent: the gradient of the sum is per-row
                grad, = torch.autograd.grad(total, c)
            if optimizer is None:
                with torch.no_grad():
                    c -= lr * grad
            else:
                c.grad = grad
                optimizer.step()
        c = c.detach()
    with torch.no_grad():
        return c, _loss(residual, c)
