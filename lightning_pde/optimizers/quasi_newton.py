"""Full-batch quasi-Newton optimizers with a dense inverse-Hessian approximation: BFGS and its self-scaled variants
SSBFGS and SSBroyden (Urban, Stefanou & Pons, arXiv 2405.04230; Kiyani et al., arXiv 2501.16371).

All three are members of the self-scaled Broyden family (Al-Baali 1998; the form used in arXiv 2405.04230): with
s = x_{k+1} - x_k, y = g_{k+1} - g_k, the update of the inverse-Hessian approximation H is

    H <- (H - H y y^T H / (y^T H y) + phi (y^T H y) v v^T) / tau + s s^T / (y^T s),
    v = s / (y^T s) - H y / (y^T H y),    phi = (1 - theta) / (1 + a theta),

where b = s^T B s / (y^T s) = -t s^T g / (y^T s) (t the step length, B = H^{-1}), h = y^T H y / (y^T s) and
a = b h - 1 >= 0. BFGS is theta = 0, tau = 1; SSBFGS keeps theta = 0 and scales by tau = min(1, 1/b); SSBroyden
also chooses theta in the interval that keeps H positive definite (see :class:`SSBroyden`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from lightning_pde.optimizers.line_search import strong_wolfe
from lightning_pde.validation import integer_at_least, nonnegative_float, positive_float, positive_int

LINE_SEARCHES = ("strong_wolfe", None)

#: most closure calls of one line search (torch.optim.LBFGS's limit too)
MAX_LINE_SEARCH_EVALUATIONS = 25

#: largest dense approximation accepted, in bytes: past this L-BFGS is the right tool
MAX_MATRIX_BYTES = 4 * 2**30


def flat_parameters(params: list[Tensor]) -> Tensor:
    """The parameters as one vector (n,), a copy."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def flat_gradient(params: list[Tensor]) -> Tensor:
    """The gradients as one vector (n,); a parameter without a gradient counts as zeros."""
    return torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1)
                      for p in params])


@torch.no_grad()
def set_parameters(params: list[Tensor], x: Tensor) -> None:
    """Write the vector x (n,) into the parameters, in order."""
    offset = 0
    for p in params:
        n = p.numel()
        p.copy_(x[offset:offset + n].view_as(p))
        offset += n


class SecondOrderOptimizer(torch.optim.Optimizer):
    """What the second-order optimizers share: one parameter group, the closure protocol of ``torch.optim.LBFGS``,
    statistics, and the loss averaged across data-parallel ranks.

    Statistics: ``optimizer.stats`` is a dict with the totals ``iterations``, ``function_evaluations`` and
    ``time_s`` (seconds spent in ``step``), the same three for the last step (``step_iterations``, ...), the last
    step's final ``loss`` and why it stopped (``stop_reason``). The totals also live in the optimizer state of the
    first parameter as ``n_iter`` and ``func_evals``, the keys ``torch.optim.LBFGS`` uses, so code that counts
    L-BFGS iterations counts these too, and they are saved in the optimizer's ``state_dict``.
    """

    def __init__(self, params: Iterable[Tensor], defaults: dict[str, Any],
                 reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(f"{type(self).__name__}: takes one parameter group (the whole parameter vector), got "
                             f"{len(self.param_groups)}")
        self._params: list[Tensor] = self.param_groups[0]["params"]
        if not self._params:
            raise ValueError(f"{type(self).__name__}: params is empty")
        self.reduce = reduce
        self._last: dict[str, Any] = {"step_iterations": 0, "step_function_evaluations": 0, "step_time_s": 0.0,
                                      "loss": math.nan, "stop_reason": None}

    @property
    def _state(self) -> dict[str, Any]:
        return self.state[self._params[0]]

    @property
    def stats(self) -> dict[str, Any]:
        state = self._state
        return {"iterations": int(state.get("n_iter", 0)), "function_evaluations": int(state.get("func_evals", 0)),
                "time_s": float(state.get("time_s", 0.0)), **self._last}

    @staticmethod
    def _stop_after_step(step: Tensor, change: float, tolerance_change: float, evaluations: int,
                         max_eval: int) -> str | None:
        """Why to stop after a step was taken: ``tolerance_change`` (the step's largest entry, or the loss's
        decrease, at most `tolerance_change`) or ``max_eval`` (the evaluation budget spent); None to go on."""
        if float(step.abs().max()) <= tolerance_change or change < tolerance_change:
            return "tolerance_change"
        if evaluations >= max_eval:
            return "max_eval"
        return None

    def _count(self, iterations: int, evaluations: int, seconds: float, loss: float, reason: str) -> None:
        state = self._state
        state["n_iter"] = int(state.get("n_iter", 0)) + iterations
        state["func_evals"] = int(state.get("func_evals", 0)) + evaluations
        state["time_s"] = float(state.get("time_s", 0.0)) + seconds
        self._last = {"step_iterations": iterations, "step_function_evaluations": evaluations,
                      "step_time_s": seconds, "loss": loss, "stop_reason": reason}

    def _reduced(self, loss: Tensor) -> Tensor:
        # a copy: the reduction works in place, and the caller (Lightning) keeps the rank's own loss
        return self.reduce(torch.as_tensor(loss).detach().clone()) if self.reduce is not None else loss


class QuasiNewton(SecondOrderOptimizer):
    """Full-batch quasi-Newton minimisation with a dense (n, n) inverse-Hessian approximation, of the self-scaled
    Broyden family (module docstring); subclasses choose the family member through :meth:`scaling`.

    The closure protocol is ``torch.optim.LBFGS``'s: ``step(closure)`` runs up to `max_iter` iterations, and
    ``closure()`` re-evaluates the loss and its gradients (``loss.backward()``) at the current parameters and returns
    the loss. Each step starts with one closure call at the current point, so the loss may change between steps
    (fresh collocation points). The parameters may be of any floating dtype; the approximation and all arithmetic
    use theirs (for float64, convert the module with ``module.double()`` before building the optimizer). Given the
    same losses and gradients the iterates are bitwise the same, so under DDP, where the closure's gradients are
    averaged across ranks and `reduce` averages the loss, every rank takes the same steps.

    Args:
        params: the parameters to optimise, one group (all of them form one vector).
        lr: the trial step length of the line search (of the step itself without one); the very first iteration
            scales it by min(1, 1 / |g|_1), as ``torch.optim.LBFGS`` does.
        max_iter: most iterations per ``step`` call.
        max_eval: most closure calls per ``step`` (default: ``2 * max_iter``, recomputed at each step from
            ``param_groups[0]["max_iter"]``, which a driver may change; ``torch.optim.LBFGS`` allows 5/4, but the
            self-scaled methods' line searches take 1.3-2 evaluations an iteration on PINNs).
        tolerance_grad: stop when the largest gradient entry is at most this.
        tolerance_change: stop when the loss, or the largest entry of the step, changes by at most this.
        history_size: None keeps the approximation for the whole run (the full-memory method); an integer m
            restarts it from the scaled identity after every m updates (drops curvature that is m steps old).
        line_search_fn: ``"strong_wolfe"`` (at most 25 evaluations a search) or None (fixed steps of length `lr`;
            updates whose curvature y^T s is not positive are skipped).
        c1, c2: the strong Wolfe constants, 0 < c1 < c2 < 1.
        reduce: maps a scalar tensor to its mean over the data-parallel ranks (``trainer.strategy.reduce``); None
            in one process.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int | None = None,
                 line_search_fn: str | None = "strong_wolfe", c1: float = 1e-4, c2: float = 0.9,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        owner = type(self).__name__
        lr = positive_float(owner, "lr", lr)
        max_iter = positive_int(owner, "max_iter", max_iter)
        #: max_eval follows max_iter (2 max_iter at each step) unless given
        self.max_eval_follows = max_eval is None
        max_eval = 2 * max_iter if max_eval is None else positive_int(owner, "max_eval", max_eval)
        tolerance_grad = nonnegative_float(owner, "tolerance_grad", tolerance_grad)
        tolerance_change = nonnegative_float(owner, "tolerance_change", tolerance_change)
        if history_size is not None:
            history_size = integer_at_least(owner, "history_size", history_size, 1)
        if line_search_fn not in LINE_SEARCHES:
            raise ValueError(f"{owner}: line_search_fn must be one of {LINE_SEARCHES}, got {line_search_fn!r}")
        c1 = positive_float(owner, "c1", c1)
        c2 = positive_float(owner, "c2", c2)
        if not c1 < c2 < 1:
            raise ValueError(f"{owner}: the Wolfe constants must satisfy 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval, "tolerance_grad": tolerance_grad,
                    "tolerance_change": tolerance_change, "history_size": history_size,
                    "line_search_fn": line_search_fn, "c1": c1, "c2": c2}
        super().__init__(params, defaults, reduce)
        n = sum(p.numel() for p in self._params)
        size = n * n * self._params[0].element_size()
        if size > MAX_MATRIX_BYTES:
            raise ValueError(f"{owner}: {n} parameters need a dense {n}x{n} inverse-Hessian approximation of "
                             f"{size / 2**30:.1f} GiB (limit {MAX_MATRIX_BYTES / 2**30:.0f} GiB); use "
                             "torch.optim.LBFGS for networks this large")

    def scaling(self, a: float, b: float, h: float, n: int) -> tuple[float, float]:
        """(theta, tau) of the update from a = b h - 1, b, h (module docstring) and the dimension n."""
        raise NotImplementedError

    def _update(self, H: Tensor, s: Tensor, y: Tensor, g: Tensor, t: float, plain: bool = False) -> None:
        """Apply the family's update to H (n, n) in place, for the step s = t d taken from gradient g to g + y;
        `plain` makes it the BFGS update (theta = 0, tau = 1), used for every family member right after a (re)start,
        when H has not seen any curvature to scale by."""
        ys = float(y @ s)
        Hy = H @ y
        yHy = float(y @ Hy)
        if yHy <= 0:  # rounding made H lose definiteness along y: start again from the scaled identity
            H.copy_(torch.eye(len(s), dtype=H.dtype, device=H.device) * (ys / float(y @ y)))
            Hy, yHy = H @ y, float(y @ (H @ y))
        h = yHy / ys
        b = -t * float(s @ g) / ys
        a = max(b * h - 1, 0.0)  # >= 0 by Cauchy-Schwarz; rounding may make it a hair negative
        theta, tau = (0.0, 1.0) if plain else self.scaling(a, b, h, len(s))
        phi = (1 - theta) / (1 + a * theta)
        v = s / ys - Hy / yHy
        H.addr_(Hy, Hy, alpha=-1 / yHy)
        if phi != 0:
            H.addr_(v, v, alpha=phi * yHy)
        if tau != 1:
            H.div_(tau)
        H.addr_(s, s, alpha=1 / ys)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """Run up to `max_iter` iterations; returns the loss the closure gave at the start of the step."""
        if closure is None:
            raise ValueError(f"{type(self).__name__}: step needs a closure that re-evaluates the loss and gradients")
        group = self.param_groups[0]
        if self.max_eval_follows:  # a driver may change max_iter between steps (the second-order phase does)
            group["max_eval"] = 2 * group["max_iter"]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        params, state = self._params, self._state
        start = time.perf_counter()

        def evaluate() -> tuple[Tensor, float, Tensor]:
            for p in params:
                p.grad = None
            with torch.enable_grad():
                loss = closure()
            return loss, float(self._reduced(loss)), flat_gradient(params)

        first_loss, loss, g = evaluate()
        evaluations, iterations, reason = 1, 0, "max_iter"
        x = flat_parameters(params)
        if "H" not in state:
            state["H"] = torch.eye(len(x), dtype=x.dtype, device=x.device)
            state["updates"] = 0
        H = state["H"]
        if float(g.abs().max()) <= tolerance_grad:
            self._count(0, evaluations, time.perf_counter() - start, loss, "tolerance_grad")
            return first_loss

        while iterations < max_iter:
            d = -(H @ g)
            dphi0 = float(g @ d)
            if not dphi0 < 0:  # not a descent direction (H lost definiteness): restart along -g
                H.copy_(torch.eye(len(x), dtype=x.dtype, device=x.device))
                state["updates"] = 0
                d, dphi0 = -g, -float(g @ g)
            t = lr * min(1.0, 1.0 / float(g.abs().sum())) if state.get("n_iter", 0) + iterations == 0 else lr
            iterations += 1

            def phi(t_: float, x: Tensor = x, d: Tensor = d) -> tuple[float, Tensor, float]:
                set_parameters(params, x + t_ * d)
                _, loss_, g_ = evaluate()
                return loss_, g_, float(g_ @ d)

            if group["line_search_fn"] == "strong_wolfe":
                d_max = float(d.abs().max())
                result = strong_wolfe(phi, t, loss, g, dphi0, group["c1"], group["c2"],
                                      max_evaluations=max(min(MAX_LINE_SEARCH_EVALUATIONS, max_eval - evaluations), 1),
                                      min_interval=tolerance_change / d_max if d_max > 0 else 0.0)
                evaluations += result.evaluations
                if result.t == 0 or result.loss > loss:
                    # no trial decreased the loss: the budget ran out, or the loss is flat to rounding along d
                    set_parameters(params, x)
                    reason = "max_eval" if evaluations >= max_eval else "line_search"
                    break
                t, new_loss, new_g = result.t, result.loss, result.grad
                set_parameters(params, x + t * d)  # the search may have evaluated elsewhere last
            else:
                new_loss, new_g, _ = phi(t)
                evaluations += 1
            s = t * d
            y = new_g - g
            if float(y @ s) > 1e-10 * float(s.norm() * y.norm()):  # curvature condition; always under strong Wolfe
                history = group["history_size"]
                if state["updates"] == 0 or (history is not None and state["updates"] >= history):
                    # before the first update scale the identity to the curvature seen along s (Nocedal & Wright
                    # eq. 6.20), so the first quasi-Newton step has the problem's units
                    H.copy_(torch.eye(len(x), dtype=x.dtype, device=x.device) * (float(y @ s) / float(y @ y)))
                    self._update(H, s, y, g, t, plain=True)
                    state["updates"] = 0
                else:
                    self._update(H, s, y, g, t)
                state["updates"] += 1
            change = abs(new_loss - loss)
            x, loss, g = x + s, new_loss, new_g
            if float(g.abs().max()) <= tolerance_grad:
                reason = "tolerance_grad"
                break
            stop = self._stop_after_step(s, change, tolerance_change, evaluations, max_eval)
            if stop is not None:
                reason = stop
                break
        self._count(iterations, evaluations, time.perf_counter() - start, loss, reason)
        return first_loss


class BFGS(QuasiNewton):
    """Full-batch BFGS with a dense inverse-Hessian approximation and a strong-Wolfe line search (Nocedal & Wright,
    Algorithm 6.1), for networks of up to a few thousand parameters. Arguments as :class:`QuasiNewton`."""

    def scaling(self, a: float, b: float, h: float, n: int) -> tuple[float, float]:
        return 0.0, 1.0


class SSBFGS(QuasiNewton):
    """Self-scaled BFGS: before each BFGS update H is scaled by 1 / tau with tau = min(1, 1/b), b = s^T B s / y^T s
    (Al-Baali's choice, the ``SSBFGS_AB`` of Kiyani et al., arXiv 2501.16371): the scaling shrinks H where it
    overestimates the inverse curvature along the last step, which plain BFGS corrects only slowly on the
    ill-conditioned losses of PINNs. Arguments as :class:`QuasiNewton`."""

    def scaling(self, a: float, b: float, h: float, n: int) -> tuple[float, float]:
        return 0.0, min(1.0, 1.0 / b)


class SSBroyden(QuasiNewton):
    """Self-scaled Broyden: the Broyden-family parameter theta and the scaling tau chosen each iteration as in
    Urban, Stefanou & Pons (arXiv 2405.04230; the ``SSBroyden2`` of their code, also used by Kiyani et al., arXiv
    2501.16371):

        rho- = min(1, h (1 - sqrt(a / (1 + a)))),  theta- = (rho- - 1) / a,  theta+ = 1 / rho-,
        theta = max(theta-, min(theta+, (1 - b) / b)),
        sigma = 1 + a theta,  tau = min(rho sigma^(1/(1-n)), sigma) if theta <= 0 else rho min(sigma^(1/(1-n)),
        1/theta),  rho = min(1, 1/b);

    theta > theta- keeps H positive definite (1 + a theta > 0). When a = 0 (y along B s) the whole family gives the
    same update and theta = 0 is used. Arguments as :class:`QuasiNewton`.
    """

    def scaling(self, a: float, b: float, h: float, n: int) -> tuple[float, float]:
        rho = min(1.0, 1.0 / b)
        if a <= 1e-12:
            return 0.0, rho
        rho_minus = min(1.0, h * (1 - math.sqrt(a / (1 + a))))
        theta_minus = (rho_minus - 1) / a
        theta_plus = 1 / rho_minus
        theta = max(theta_minus, min(theta_plus, (1 - b) / b))
        sigma = 1 + a * theta
        sigma_root = abs(sigma) ** (1 / (1 - n)) if n > 1 else 1.0
        tau = min(rho * sigma_root, sigma) if theta <= 0 else rho * min(sigma_root, 1 / theta)
        return theta, tau
