r"""Exact reference solution of the viscous Burgers equation.

Problem::

    u_t + u u_x = nu u_xx,   x in [-1, 1],  t in [0, 1],
    u(x, 0) = -sin(pi x),    u(-1, t) = u(1, t) = 0.

The Cole-Hopf transform (Hopf 1950, Cole 1951) ``u = -2 nu phi_x / phi``
turns Burgers into the heat equation ``phi_t = nu phi_xx``. The initial datum
``phi(x, 0) = f(x) = exp(-cos(pi x) / (2 pi nu))`` is even and 2-periodic, so
the whole-line heat kernel solution automatically satisfies the boundary
conditions (u is odd about x = 0 and about x = +-1), and::

                  integral sin(pi (x - eta)) f(x - eta) exp(-eta^2 / (4 nu t)) d eta
    u(x, t) = - ----------------------------------------------------------------------
                  integral                  f(x - eta) exp(-eta^2 / (4 nu t)) d eta

with integrals over the real line. Substituting ``eta = sqrt(4 nu t) s`` makes
the Gaussian the Gauss-Hermite weight ``exp(-s^2)``; this is the construction
used for the widely used ``nu = 0.01 / pi`` benchmark (Basdevant et al., 1986,
"Spectral and finite difference solutions of the Burgers equation",
Computers & Fluids 14(1)).
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.polynomial.hermite import hermgauss

from lightning_pde.validation import finite_1d, positive_float

from .cache import cached_array

__all__ = ["cole_hopf_burgers", "burgers_reference"]

# hermgauss returns NaN weights somewhere above ~360 nodes; 300 leaves margin.
_MAX_QUADRATURE = 300
# Upper bound on len(x) * chunk * n_quadrature so the (x, t, node) temporaries
# stay around 30 MiB each regardless of the grid size.
_MAX_BLOCK_ELEMENTS = 4_000_000


def _checked_n_quadrature(n_quadrature, caller: str) -> int:
    if (
        isinstance(n_quadrature, bool)
        or not isinstance(n_quadrature, numbers.Integral)
        or not 2 <= n_quadrature <= _MAX_QUADRATURE
    ):
        raise ValueError(
            f"{caller}: n_quadrature must be an integer in [2, {_MAX_QUADRATURE}], "
            f"got {n_quadrature!r}"
        )
    return int(n_quadrature)


def cole_hopf_burgers(
    x: np.ndarray, t: np.ndarray, nu: float, n_quadrature: int = 200
) -> np.ndarray:
    r"""Evaluate the Cole-Hopf solution of the viscous Burgers problem.

    Solves ``u_t + u u_x = nu u_xx`` with ``u(x, 0) = -sin(pi x)`` and
    ``u(+-1, t) = 0`` via the Cole-Hopf transform (see the module docstring):
    with ``c = sqrt(4 nu t)``, ``y_k = x - c s_k`` and Gauss-Hermite nodes and
    weights ``(s_k, w_k)``::

        u(x, t) = - sum_k w_k sin(pi y_k) f(y_k) / sum_k w_k f(y_k),
        f(y) = exp(-cos(pi y) / (2 pi nu)).

    ``f`` spans ``exp(+-1 / (2 pi nu))`` (``exp(+-50)`` at ``nu = 0.01/pi``), so
    the largest exponent of ``w_k f(y_k)`` is subtracted for every ``(x, t)``
    before exponentiating; numerator and denominator share the factor.

    Accuracy: at ``nu = 0.01/pi`` on ``t in [0, 1]`` 150 and 200 nodes agree to
    about 1e-14; smaller ``nu`` makes ``f`` sharper and needs more nodes.

    Args:
        x: Points in space, shape ``(nx,)``. Any real values are accepted; the
            formula is the odd 2-periodic extension outside ``[-1, 1]``.
        t: Times, shape ``(nt,)``, all ``>= 0``. ``t == 0`` returns the initial
            condition ``-sin(pi x)`` exactly.
        nu: Viscosity, ``> 0``.
        n_quadrature: Number of Gauss-Hermite nodes, ``2 <= n <= 300``.

    Returns:
        ``u`` with ``u[i, j] = u(x[i], t[j])``, shape ``(nx, nt)``, float64.

    Raises:
        ValueError: for a non-positive or non-finite ``nu``, a negative or
            non-finite ``t``, non-1-D ``x``/``t`` or ``n_quadrature`` outside
            ``[2, 300]``.
    """
    nu = positive_float("cole_hopf_burgers", "nu", nu)
    n_quadrature = _checked_n_quadrature(n_quadrature, "cole_hopf_burgers")
    x = finite_1d("cole_hopf_burgers", "x", x)
    t = finite_1d("cole_hopf_burgers", "t", t)
    if np.any(t < 0):
        raise ValueError(f"cole_hopf_burgers: t must be >= 0, got {t[t < 0][:3]}")

    nodes, weights = hermgauss(n_quadrature)
    log_weights = np.log(weights)

    u = np.empty((x.size, t.size), dtype=np.float64)
    initial = t == 0
    # At t = 0 the kernel is a delta; the quadrature would only reproduce the
    # initial condition up to rounding.
    u[:, initial] = -np.sin(np.pi * x)[:, None]

    positive = np.flatnonzero(~initial)
    chunk = max(1, _MAX_BLOCK_ELEMENTS // max(1, x.size * nodes.size))
    for start in range(0, positive.size, chunk):
        columns = positive[start : start + chunk]
        u[:, columns] = _quadrature(x[:, None], t[None, columns], nu, nodes, log_weights)
    return u


def _quadrature(x: np.ndarray, t: np.ndarray, nu: float, nodes: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    """The Cole-Hopf quadrature at x and t > 0 broadcast against each other (a grid or paired points)."""
    # y[..., k] = x - sqrt(4 nu t) s_k
    y = x[..., None] - np.sqrt(4.0 * nu * t)[..., None] * nodes
    exponent = log_weights - np.cos(np.pi * y) / (2.0 * np.pi * nu)
    exponent -= exponent.max(axis=-1, keepdims=True)
    kernel = np.exp(exponent)
    numerator = (np.sin(np.pi * y) * kernel).sum(axis=-1)
    # The largest term is exp(0) = 1, so the denominator is >= 1.
    return -numerator / kernel.sum(axis=-1)


def cole_hopf_burgers_points(x: np.ndarray, t: np.ndarray, nu: float, n_quadrature: int = 200) -> np.ndarray:
    """The Cole-Hopf solution of :func:`cole_hopf_burgers` at paired scattered points (x[i], t[i]), shape (n,).

    Raises:
        ValueError: as :func:`cole_hopf_burgers`, and when x and t differ in length.
    """
    nu = positive_float("cole_hopf_burgers_points", "nu", nu)
    n_quadrature = _checked_n_quadrature(n_quadrature, "cole_hopf_burgers_points")
    x = finite_1d("cole_hopf_burgers_points", "x", x)
    t = finite_1d("cole_hopf_burgers_points", "t", t)
    if x.shape != t.shape:
        raise ValueError(f"cole_hopf_burgers_points: x and t must have the same length, got {x.size} and {t.size}")
    if np.any(t < 0):
        raise ValueError(f"cole_hopf_burgers_points: t must be >= 0, got {t[t < 0][:3]}")
    nodes, weights = hermgauss(n_quadrature)
    u = -np.sin(np.pi * x)  # exact at t = 0, where the kernel is a delta
    positive = t > 0
    u[positive] = _quadrature(x[positive], t[positive], nu, nodes, np.log(weights))
    return u


def burgers_reference(
    nu: float = 0.01 / np.pi, nx: int = 256, nt: int = 100, n_quadrature: int = 200
) -> dict[str, np.ndarray]:
    """Cole-Hopf Burgers solution on a uniform grid, cached on disk.

    The grid is ``x = linspace(-1, 1, nx)``, ``t = linspace(0, 1, nt)``; the
    defaults are the usual ``nu = 0.01/pi`` benchmark resolution. Results are
    stored through :func:`lightning_pde.reference.cached_array` under the name
    ``"burgers_cole_hopf"`` keyed by all four arguments.

    Args:
        nu: Viscosity, ``> 0``.
        nx: Number of grid points in space, ``>= 2``.
        nt: Number of grid points in time, ``>= 2``.
        n_quadrature: Gauss-Hermite nodes, ``2 <= n <= 300``.

    Returns:
        Dict with ``"x"`` of shape ``(nx,)``, ``"t"`` of shape ``(nt,)`` and
        ``"u"`` of shape ``(nx, nt)`` with ``u[i, j] = u(x[i], t[j])``, all
        float64.

    Raises:
        ValueError: for ``nx`` or ``nt`` below 2 or an invalid ``nu`` or
            ``n_quadrature`` (see :func:`cole_hopf_burgers`).
    """
    for argument, value in (("nx", nx), ("nt", nt)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
            raise ValueError(
                f"burgers_reference: {argument} must be an integer >= 2, got {value!r}"
            )
    # Validate before touching the cache so bad input never creates files.
    params = {
        "nu": positive_float("burgers_reference", "nu", nu),
        "nx": int(nx),
        "nt": int(nt),
        "n_quadrature": _checked_n_quadrature(n_quadrature, "burgers_reference"),
    }

    def compute() -> dict[str, np.ndarray]:
        x = np.linspace(-1.0, 1.0, params["nx"])
        t = np.linspace(0.0, 1.0, params["nt"])
        u = cole_hopf_burgers(x, t, params["nu"], params["n_quadrature"])
        return {"x": x, "t": t, "u": u}

    return cached_array("burgers_cole_hopf", params, compute)
