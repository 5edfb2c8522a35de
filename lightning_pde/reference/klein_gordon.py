r"""Method-of-lines reference solution of the nonlinear Klein-Gordon problem.

Problem (docs/design.md; the parametric benchmark of GPT-PINN, Chen & Koohy 2023, arXiv 2303.14878)::

    u_tt + alpha u_xx + beta u + gamma u^2 + x cos t - x^2 cos^2 t = 0,   x in [-1, 1],  t in [0, T],
    u(x, 0) = x,   u_t(x, 0) = 0,   u(-1, t) = -cos t,   u(1, t) = cos t.

For ``alpha < 0`` this is a nonlinear wave equation with speed ``sqrt(-alpha)``. Space is discretised with
fourth-order central differences on a uniform grid (the one-sided fourth-order stencil at the first and last
interior node), the Dirichlet data enter through the boundary nodes, and the first-order system
``(u, v = u_t)`` is integrated in time by scipy's ``DOP853`` with tight tolerances.

At ``(alpha, beta, gamma) = (-1, 0, 1)`` the exact solution is ``u = x cos t``; it is linear in x, so the spatial
stencils are exact for it and the only error left is the time integrator's. Unless ``beta = 0`` and
``gamma = 1`` the initial and boundary data are not second-order compatible at the corners: ``u_tt(-1, 0)`` is
``2 + beta - gamma`` by the PDE and 1 by the boundary data, ``u_tt(1, 0)`` is ``-(beta + gamma)`` and -1. So the
second derivatives jump along the characteristics from the corners (and their reflections), and the observed
convergence under grid refinement is below fourth order.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import solve_ivp

from lightning_pde.validation import finite_float, integer_at_least

from .cache import cached_array

__all__ = ["klein_gordon_method_of_lines", "klein_gordon_reference"]

# The one-sided stencil at the first interior node reaches five nodes inland.
_MIN_INTERVALS = 6


def _checked_alpha(alpha, caller: str) -> float:
    alpha = finite_float(caller, "alpha", alpha)
    if alpha >= 0:
        # alpha >= 0 turns the equation elliptic in (x, t): the initial-boundary value problem is ill-posed.
        raise ValueError(f"{caller}: alpha must be < 0 (a wave equation with speed sqrt(-alpha)), got {alpha!r}")
    return alpha


def _second_derivative(u: np.ndarray, h: float) -> np.ndarray:
    """Fourth-order u_xx at the interior nodes of a uniform grid; u (n + 1,) -> (n - 1,)."""
    u_xx = np.empty(u.size - 2)
    u_xx[1:-1] = (-u[:-4] + 16 * u[1:-3] - 30 * u[2:-2] + 16 * u[3:-1] - u[4:]) / 12
    u_xx[0] = (10 * u[0] - 15 * u[1] - 4 * u[2] + 14 * u[3] - 6 * u[4] + u[5]) / 12
    u_xx[-1] = (10 * u[-1] - 15 * u[-2] - 4 * u[-3] + 14 * u[-4] - 6 * u[-5] + u[-6]) / 12
    return u_xx / h**2


def klein_gordon_method_of_lines(
    alpha: float, beta: float, gamma: float, n_intervals: int, t: np.ndarray,
    rtol: float = 1e-10, atol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve the Klein-Gordon problem (module docstring) by the method of lines.

    Args:
        alpha: coefficient of u_xx, < 0.
        beta: coefficient of u.
        gamma: coefficient of u^2.
        n_intervals: number of grid intervals in x, >= 6 (grid spacing h = 2 / n_intervals).
        t: output times, shape (nt,), increasing, starting at 0.
        rtol: relative tolerance of the time integrator.
        atol: absolute tolerance of the time integrator.

    Returns:
        ``(x, u)``: the grid ``linspace(-1, 1, n_intervals + 1)`` and ``u[i, j] = u(x[i], t[j])`` of shape
        ``(n_intervals + 1, nt)``, float64. The boundary rows are the Dirichlet data.

    Raises:
        ValueError: for invalid coefficients, grid or times.
        RuntimeError: when the time integrator fails (e.g. the solution blows up for a large ``gamma``).
    """
    caller = "klein_gordon_method_of_lines"
    alpha = _checked_alpha(alpha, caller)
    beta = finite_float(caller, "beta", beta)
    gamma = finite_float(caller, "gamma", gamma)
    n_intervals = integer_at_least(caller, "n_intervals", n_intervals, _MIN_INTERVALS)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or t[0] != 0 or np.any(np.diff(t) <= 0):
        raise ValueError(f"{caller}: t must be a 1-D increasing array starting at 0, got {t!r}")

    x = np.linspace(-1.0, 1.0, n_intervals + 1)
    h = 2.0 / n_intervals
    x_in = x[1:-1]
    m = x_in.size

    def rhs(time: float, y: np.ndarray) -> np.ndarray:
        u, v = y[:m], y[m:]
        c = math.cos(time)
        u_full = np.concatenate(([-c], u, [c]))
        u_tt = -alpha * _second_derivative(u_full, h) - beta * u - gamma * u * u - x_in * c + x_in**2 * c * c
        return np.concatenate((v, u_tt))

    y0 = np.concatenate((x_in, np.zeros(m)))
    solution = solve_ivp(rhs, (0.0, float(t[-1])), y0, method="DOP853", t_eval=t, rtol=rtol, atol=atol)
    if not solution.success:
        raise RuntimeError(f"{caller}: time integration failed for (alpha, beta, gamma) = "
                           f"({alpha}, {beta}, {gamma}): {solution.message}")
    u = np.empty((n_intervals + 1, t.size))
    u[1:-1] = solution.y[:m]
    u[0], u[-1] = -np.cos(t), np.cos(t)
    return x, u


def klein_gordon_reference(
    alpha: float = -1.0, beta: float = 0.0, gamma: float = 1.0, nx: int = 201, nt: int = 201,
    t_end: float = 5.0, refine: int = 4, rtol: float = 1e-10, atol: float = 1e-12,
) -> dict[str, np.ndarray]:
    """Klein-Gordon reference solution on a uniform grid, cached on disk.

    The solver grid has ``(nx - 1) * refine`` intervals, so the output grid ``x = linspace(-1, 1, nx)`` is a subset
    of its nodes; ``t = linspace(0, t_end, nt)``. Results are stored through
    :func:`lightning_pde.reference.cached_array` under ``"klein_gordon_mol"`` keyed by every argument.

    Args:
        alpha: coefficient of u_xx, < 0.
        beta: coefficient of u.
        gamma: coefficient of u^2.
        nx: output grid points in x, >= 2.
        nt: output grid points in t, >= 2.
        t_end: final time, > 0.
        refine: solver grid intervals per output grid interval, >= 1.
        rtol: relative tolerance of the time integrator, > 0.
        atol: absolute tolerance of the time integrator, > 0.

    Returns:
        Dict with ``"x"`` (nx,), ``"t"`` (nt,) and ``"u"`` (nx, nt) with ``u[i, j] = u(x[i], t[j])``, float64.
    """
    caller = "klein_gordon_reference"
    nx = integer_at_least(caller, "nx", nx, 2)
    nt = integer_at_least(caller, "nt", nt, 2)
    refine = integer_at_least(caller, "refine", refine, 1)
    if (nx - 1) * refine < _MIN_INTERVALS:
        raise ValueError(f"{caller}: (nx - 1) * refine must be >= {_MIN_INTERVALS}, got {(nx - 1) * refine}")
    for name, value in (("t_end", t_end), ("rtol", rtol), ("atol", atol)):
        if finite_float(caller, name, value) <= 0:
            raise ValueError(f"{caller}: {name} must be a finite number > 0, got {value!r}")
    # Validate before touching the cache so bad input never creates files.
    params = {
        "alpha": _checked_alpha(alpha, caller), "beta": finite_float(caller, "beta", beta),
        "gamma": finite_float(caller, "gamma", gamma), "nx": nx, "nt": nt, "t_end": float(t_end),
        "refine": refine, "rtol": float(rtol), "atol": float(atol),
    }

    def compute() -> dict[str, np.ndarray]:
        t = np.linspace(0.0, params["t_end"], nt)
        x, u = klein_gordon_method_of_lines(params["alpha"], params["beta"], params["gamma"], (nx - 1) * refine, t,
                                            params["rtol"], params["atol"])
        return {"x": x[::refine], "t": t, "u": u[::refine]}

    return cached_array("klein_gordon_mol", params, compute)
