"""Gauss-Newton / Levenberg-Marquardt for small networks: the damped normal equations J^T J of the residual vector
are formed and solved exactly.

For a PINN loss sum_i r_i(theta)^2 whose residuals are linear in the network's output (Poisson, Helmholtz, the
boundary and data terms), J^T J is the Gram matrix of the energy natural gradient (Mueller & Zeinhofer, arXiv
2302.13163, Sec. 3): a Gauss-Newton step is a natural-gradient step in function space. For nonlinear residuals
(Burgers) it is the Gauss-Newton approximation of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from lightning_pde.gptpinn.solvers import normal_from_jacobian
from lightning_pde.optimizers.quasi_newton import SecondOrderOptimizer, flat_parameters, set_parameters
from lightning_pde.validation import nonnegative_float, positive_float, positive_int

#: the damping's bounds: past MAX_DAMPING no step of the current model decreases the loss
MIN_DAMPING, MAX_DAMPING = 1e-12, 1e10


def residual_jacobian(r: Tensor, params: list[Tensor], chunk: int = 256) -> Tensor:
    """J (R, n) = d r / d theta of the residual vector r (R,) by reverse mode, `chunk` rows per batched backward
    pass (``is_grads_batched``); row by row where a residual's backward cannot be batched. Reverse mode works
    through any derivative engine (residuals built with ``torch.autograd.grad(create_graph=True)`` included), which
    the forward-mode :func:`lightning_pde.gptpinn.solvers.jacobian` cannot: it needs the residual as a pure function
    of the parameters, while a closure reads the module's parameters in place."""
    R = r.numel()
    flat = r.reshape(-1)

    def rows(basis: Tensor, batched: bool) -> Tensor:
        grads = torch.autograd.grad(flat, params, basis, retain_graph=True, allow_unused=True,
                                    is_grads_batched=batched)
        m = basis.shape[0] if batched else 1
        return torch.cat([(g if g is not None else torch.zeros(m, *p.shape, dtype=p.dtype, device=p.device)
                           ).reshape(m, -1) for g, p in zip(grads, params)], dim=1)

    blocks = []
    for start in range(0, R, chunk):
        m = min(chunk, R - start)
        basis = torch.zeros(m, R, dtype=r.dtype, device=r.device)
        basis[torch.arange(m), start + torch.arange(m)] = 1
        try:
            blocks.append(rows(basis, True))
        except RuntimeError:  # an op without a batching rule for its backward
            blocks.append(torch.cat([rows(e, False) for e in basis]))
    return torch.cat(blocks)


def levenberg_marquardt_step(jtj: Tensor, jtr: Tensor, damping: Tensor | float) -> Tensor:
    """The step delta (..., n) solving (J^T J + damping D) delta = -J^T r, with Marquardt's scaling D = diag(J^T J)
    (clamped away from 0, so that unused parameters do not make the system singular); jtj (..., n, n), jtr (..., n),
    damping a float or (...,)."""
    diagonal = torch.diagonal(jtj, dim1=-2, dim2=-1)
    scale = torch.maximum(diagonal, 1e-12 * diagonal.amax(-1, keepdim=True).clamp_min(1e-300))
    damping = torch.as_tensor(damping, dtype=jtj.dtype, device=jtj.device)
    system = jtj + torch.diag_embed(damping[..., None] * scale)
    return torch.linalg.solve(system, -jtr.unsqueeze(-1)).squeeze(-1)


class GaussNewton(SecondOrderOptimizer):
    """Levenberg-Marquardt (damped Gauss-Newton) on a residual vector, for networks small enough to form the
    (n, n) matrix J^T J: each iteration forms J (R, n) by reverse mode, solves the damped normal equations (the
    Gauss-Newton pieces come from the GPT-PINN solvers, :func:`lightning_pde.gptpinn.solvers.normal_from_jacobian`)
    and tries the step, raising the damping until the loss decreases (by 2, 4, 8, ... after successive rejections)
    and lowering it after a success by as much as a third, the more the better the linear model predicted the
    decrease (Nielsen's rule; the GPT-PINN online solver's fixed factors 1/3 and 4 rejected about one trial in
    three on a PINN).

    The closure protocol differs from ``torch.optim.LBFGS`` in one point: ``closure()`` returns the **residual
    vector** r (any shape; flattened to (R,)) whose sum of squares is the loss, built with autograd enabled and
    **without** calling ``backward``. For a PINN loss sum_c w_c mean_i res_{c,i}^2 that is the concatenation of
    sqrt(w_c / N_c) res_c over the conditions c (:class:`~lightning_pde.optimizers.PINNResiduals` builds it). A
    closure that can compute its own Jacobian faster offers ``closure.jacobian(params) -> (r (R,), J (R, n))``
    (columns in the order of `params`), which is then used instead of :func:`residual_jacobian` (the convention
    of the GPT-PINN solvers' ``residual.jacobian``). ``step`` returns the loss sum r^2 at the start of the step as a
    0-dim tensor. The optimizer works in the parameters' dtype (convert the module with ``module.double()`` first
    for float64). It runs in one process: under DDP each rank's residuals are its own shard and J^T J would need
    summing across ranks.

    Statistics as :class:`~lightning_pde.optimizers.quasi_newton.SecondOrderOptimizer`; a rejected trial step
    counts as a function evaluation, not as an iteration.

    Args:
        params: the parameters to optimise, one group.
        lr: fraction of the Levenberg-Marquardt step taken (1: the full step).
        max_iter: most iterations (accepted steps) per ``step`` call.
        damping: the initial damping lambda, relative to diag(J^T J) (Marquardt's scaling).
        max_eval: most residual evaluations per ``step`` (default: ``3 * max_iter + 10``, recomputed at each step
            from ``param_groups[0]["max_iter"]``; an iteration evaluates its trial step, a supplied Jacobian
            evaluates the residual again, and rejected trials cost one each).
        tolerance_grad: stop when the largest entry of the loss gradient 2 J^T r is at most this.
        tolerance_change: stop when the loss, or the largest entry of the step, changes by at most this.
        jacobian_chunk: rows of J per batched backward pass (memory against speed).
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1.0, max_iter: int = 1, damping: float = 1e-3,
                 max_eval: int | None = None, tolerance_grad: float = 1e-9, tolerance_change: float = 1e-12,
                 jacobian_chunk: int = 256) -> None:
        owner = "GaussNewton"
        lr = positive_float(owner, "lr", lr, maximum=1.0)
        max_iter = positive_int(owner, "max_iter", max_iter)
        damping = positive_float(owner, "damping", damping)
        #: max_eval follows max_iter (3 max_iter + 10 at each step) unless given
        self.max_eval_follows = max_eval is None
        max_eval = 3 * max_iter + 10 if max_eval is None else positive_int(owner, "max_eval", max_eval)
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": nonnegative_float(owner, "tolerance_grad", tolerance_grad),
                    "tolerance_change": nonnegative_float(owner, "tolerance_change", tolerance_change),
                    "jacobian_chunk": positive_int(owner, "jacobian_chunk", jacobian_chunk)}
        super().__init__(params, defaults)
        self._state["damping"] = damping

    def _residual(self, closure: Callable[[], Tensor]) -> Tensor:
        with torch.enable_grad():
            r = closure()
        if not isinstance(r, Tensor) or r.ndim == 0 or r.numel() < 1:
            # a 0-dim tensor is most likely a loss (Lightning's training-step closure): squaring it would be wrong
            got = "a 0-dim tensor (a loss?)" if isinstance(r, Tensor) and r.ndim == 0 else type(r).__name__
            raise ValueError("GaussNewton: the closure must return the residual vector (a tensor of shape (R,) or "
                             f"(R, k) whose sum of squares is the loss), got {got}")
        return r.reshape(-1)

    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """Run up to `max_iter` Levenberg-Marquardt iterations; returns the loss sum r^2 at the start."""
        if closure is None:
            raise ValueError("GaussNewton: step needs a closure that returns the residual vector")
        group, params, state = self.param_groups[0], self._params, self._state
        start = time.perf_counter()
        iterations, evaluations, reason = 0, 0, "max_iter"
        if self.max_eval_follows:  # a driver may change max_iter between steps
            group["max_eval"] = 3 * group["max_iter"] + 10
        max_eval = group["max_eval"]
        supplied = getattr(closure, "jacobian", None)
        r, first_loss = None, None
        x = flat_parameters(params)
        while iterations < group["max_iter"]:
            if callable(supplied):
                r, jac = supplied(params)
            else:
                if r is None:
                    r = self._residual(closure)
                jac = residual_jacobian(r, params, group["jacobian_chunk"])
            # the Jacobian's residual evaluation; without a supplied Jacobian, later iterations differentiate the
            # accepted trial's residual, already counted
            evaluations += 1 if callable(supplied) or iterations == 0 else 0
            r, jac = r.detach().reshape(-1), jac.detach()
            if first_loss is None:
                first_loss = r.square().sum()
                loss = float(first_loss)
            _, jtj, jtr = (m[0] for m in normal_from_jacobian(r[None], jac[None]))
            if float((2 * jtr).abs().max()) <= group["tolerance_grad"]:
                reason = "tolerance_grad"
                break
            accepted = False
            while evaluations < max_eval:
                step = group["lr"] * levenberg_marquardt_step(jtj, jtr, state["damping"])
                set_parameters(params, x + step)
                trial = self._residual(closure)
                evaluations += 1
                trial_loss = float(trial.detach().square().sum())
                # gain ratio: the actual decrease over the decrease |r|^2 - |r + J step|^2 the linear model predicts
                predicted = -float(2 * step @ jtr + step @ (jtj @ step))
                if trial_loss < loss:
                    accepted = True
                    gain = (loss - trial_loss) / predicted if predicted > 0 else 0.0
                    # Nielsen's update (Nielsen 1999; Madsen, Nielsen & Tingleff 2004, Sec. 3.2): the better the model
                    # predicted the decrease, the more the damping shrinks, to a third at most
                    factor = max(1 / 3, 1 - (2 * gain - 1) ** 3)
                    state["damping"] = max(state["damping"] * factor, MIN_DAMPING)
                    state["damping_growth"] = 2.0
                    break
                growth = state.get("damping_growth", 2.0)
                state["damping"] = min(state["damping"] * growth, MAX_DAMPING)
                state["damping_growth"] = 2 * growth
                if state["damping"] >= MAX_DAMPING:
                    break
            if not accepted:
                set_parameters(params, x)
                reason = "damping" if state["damping"] >= MAX_DAMPING else "max_eval"
                break
            iterations += 1
            change = loss - trial_loss
            x, r, loss = x + step, trial, trial_loss
            stop = self._stop_after_step(step, change, group["tolerance_change"], evaluations, max_eval)
            if stop is not None:
                reason = stop
                break
        self._count(iterations, evaluations, time.perf_counter() - start, loss, reason)
        return first_loss
