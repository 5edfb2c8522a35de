"""A strong-Wolfe line search (Nocedal & Wright, Numerical Optimization, 2nd ed., Algorithms 3.5 and 3.6) shared by
the quasi-Newton optimizers.

Written here rather than borrowed from ``torch.optim.lbfgs._strong_wolfe``: that function is private (its name and
signature may change in any torch release) and it moves the parameters itself through an L-BFGS-specific callback.
This one works on a scalar function of the step length ``phi(t) = f(x + t d)`` and returns what the optimizers
report (the accepted step, its loss and gradient, and how many evaluations it took).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

#: the line search's evaluation of ``phi(t)``: (loss, gradient at x + t d (n,), directional derivative phi'(t))
Evaluation = tuple[float, Tensor, float]


@dataclass
class LineSearchResult:
    """The step length `t` the search accepted, with phi(t) (`loss`), the gradient there (`grad`, (n,)) and phi'(t)
    (`dphi`); `evaluations` counts the calls of phi; `wolfe` says whether both strong Wolfe conditions hold at `t`
    (False when the evaluation budget or the interval tolerance ran out first; `t` then still decreases the loss
    whenever any tried step did)."""

    t: float
    loss: float
    grad: Tensor
    dphi: float
    evaluations: int
    wolfe: bool


def cubic_minimizer(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float, lower: float,
                    upper: float) -> float:
    """Minimizer in [lower, upper] of the cubic that interpolates phi and phi' at t1 and t2 (Nocedal & Wright eq.
    3.59); the midpoint of the bounds when the cubic has no minimizer (or the data are not finite)."""
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square >= 0 and math.isfinite(d2_square):
        d2 = math.copysign(math.sqrt(d2_square), t2 - t1)
        denominator = g2 - g1 + 2 * d2
        if denominator != 0:
            t = t2 - (t2 - t1) * (g2 + d2 - d1) / denominator
            if math.isfinite(t):
                return min(max(t, lower), upper)
    return (lower + upper) / 2


def strong_wolfe(phi: Callable[[float], Evaluation], t: float, loss0: float, grad0: Tensor, dphi0: float,
                 c1: float = 1e-4, c2: float = 0.9, max_evaluations: int = 25,
                 min_interval: float = 0.0) -> LineSearchResult:
    """Find t > 0 with the strong Wolfe conditions

        phi(t) <= phi(0) + c1 t phi'(0)     (sufficient decrease)
        |phi'(t)| <= c2 |phi'(0)|           (curvature)

    for a descent direction (phi'(0) < 0), starting from the trial step `t`: bracketing with cubic extrapolation
    (Algorithm 3.5), then zooming into the bracket with safeguarded cubic interpolation (Algorithm 3.6).

    Args:
        phi: evaluates the loss, the gradient (n,) and phi' at x + t d.
        t: the first trial step (> 0).
        loss0, grad0, dphi0: phi(0), the gradient at x and phi'(0) (< 0).
        c1, c2: the Wolfe constants, 0 < c1 < c2 < 1.
        max_evaluations: most calls of `phi`.
        min_interval: stop zooming once the bracket is shorter than this (in units of t).
    """
    evaluations = 0
    t_prev, loss_prev, grad_prev, dphi_prev = 0.0, loss0, grad0, dphi0

    def sufficient(t_: float, loss_: float) -> bool:
        return loss_ <= loss0 + c1 * t_ * dphi0

    bracket = None
    while evaluations < max_evaluations:
        loss, grad, dphi = phi(t)
        evaluations += 1
        if not math.isfinite(loss) or not sufficient(t, loss) or (evaluations > 1 and loss >= loss_prev):
            bracket = [(t_prev, loss_prev, grad_prev, dphi_prev), (t, loss, grad, dphi)]
            break
        if abs(dphi) <= -c2 * dphi0:
            return LineSearchResult(t, loss, grad, dphi, evaluations, True)
        if dphi >= 0:
            bracket = [(t, loss, grad, dphi), (t_prev, loss_prev, grad_prev, dphi_prev)]
            break
        # phi still decreases at t: extrapolate, at least a little beyond t and at most ten times it
        lower, upper = t + 0.01 * (t - t_prev), 10 * t
        t_next = cubic_minimizer(t_prev, loss_prev, dphi_prev, t, loss, dphi, lower, upper)
        t_prev, loss_prev, grad_prev, dphi_prev = t, loss, grad, dphi
        t = t_next
    if bracket is None:  # budget spent while still extrapolating: the last point decreased the loss enough
        return LineSearchResult(t_prev, loss_prev, grad_prev, dphi_prev, evaluations, False)

    # zoom: bracket[0] is "lo" (sufficient decrease, the lower loss), bracket[1] is "hi"
    lo, hi = bracket
    while evaluations < max_evaluations and abs(hi[0] - lo[0]) > min_interval:
        a, b = sorted((lo[0], hi[0]))
        # keep the trial away from the bracket's ends so the bracket shrinks by a fixed fraction at least
        margin = 0.1 * (b - a)
        if math.isfinite(hi[1]):
            t = cubic_minimizer(lo[0], lo[1], lo[3], hi[0], hi[1], hi[3], a + margin, b - margin)
        else:
            t = (a + b) / 2
        loss, grad, dphi = phi(t)
        evaluations += 1
        if not math.isfinite(loss) or not sufficient(t, loss) or loss >= lo[1]:
            hi = (t, loss, grad, dphi)
        else:
            if abs(dphi) <= -c2 * dphi0:
                return LineSearchResult(t, loss, grad, dphi, evaluations, True)
            if dphi * (hi[0] - lo[0]) >= 0:
                hi = lo
            lo = (t, loss, grad, dphi)
    t, loss, grad, dphi = lo
    return LineSearchResult(t, loss, grad, dphi, evaluations, False)
