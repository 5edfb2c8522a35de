r"""Fourier spectral reference solution of the Allen-Cahn equation.

Problem::

    u_t - lam u_xx + eps (u^3 - u) = 0,   x in [-1, 1],  t in [0, 1],
    u(x, 0) = x^2 cos(pi x),               u 2-periodic in x.

``lam = 1e-4``, ``eps = 5`` is the usual PINN benchmark (the ``AC.mat`` data of
Raissi, Perdikaris & Karniadakis 2019, "Physics-informed neural networks",
J. Comput. Phys. 378): the two bumps of the initial condition are pulled to
the stable states ``u = +-1`` and by ``t = 1`` the solution is a metastable
pattern of plateaus near ``+-1`` joined by thin ``tanh`` interfaces of width
about ``sqrt(2 lam / eps) ~ 0.006``.

Discretisation:

* **Space: Fourier-Galerkin.** ``u`` is represented by the modes
  ``exp(i pi m (x + 1))``, ``|m| < N/2`` (``N = nx_spectral``, the Nyquist
  mode is kept at zero). The cubic term is evaluated on a zero-padded grid of
  ``2 N`` points, which is exact for cubes of such series (Orszag's rule for a
  cubic nonlinearity), so the semi-discretisation is the Galerkin projection
  with no aliasing error.
* **Initial coefficients: projection, not interpolation.** The periodic
  extension of ``x^2 cos(pi x)`` has a corner at ``x = +-1`` (``u_x`` jumps
  from ``-2`` to ``2``), so its Fourier coefficients decay only like ``m^-2``.
  Sampling it on the ``N``-point grid would alias ``O(N^-2)`` of the
  discarded modes into the retained ones, an error that diffusion does not
  remove (about ``3e-4`` at ``t = 0.01`` for ``N = 1024``). Instead the
  initial condition is sampled on a grid of ``N_fine = R N`` points,
  ``R = max(64, ceil(2^18 / N))``, and its FFT is truncated to
  ``|m| < N/2``; each retained coefficient is then off the exact projection
  by ``O(N_fine^-2)`` (about 1e-11 for the benchmark corner).
* **Time: ETDRK4** (Cox & Matthews 2002, "Exponential time differencing for
  stiff systems", J. Comput. Phys. 176) with linear part
  ``L = eps - lam (pi m)^2`` and nonlinear part ``N(u) = -eps u^3``. The
  ``phi`` functions are evaluated by the contour-integral trick of Kassam &
  Trefethen (2005, "Fourth-order time-stepping for stiff PDEs", SIAM J. Sci.
  Comput. 26(4)), which avoids the cancellation of the explicit formulas for
  small ``h L``. Every interval between consecutive output times is split
  into equal steps no longer than ``dt``, so the solution is stepped exactly
  to each output time (no interpolation in time).
* **Output: exact trigonometric interpolation** of the Fourier series at the
  requested ``x``, with the phase ``pi m (x + 1)`` reduced modulo ``2 pi``
  before the cosine, and points one period apart
  (``x = -1`` and ``x = 1``) get bit-identical values.
"""

from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

from lightning_pde.validation import finite_1d, nonnegative_float, positive_float

from .cache import cached_array

__all__ = ["allen_cahn_initial_condition", "allen_cahn_reference", "allen_cahn_spectral"]

# The initial condition is projected via an FFT on a grid at least this many
# times finer than the spectral grid and with at least _IC_MIN_POINTS points.
_IC_OVERSAMPLING = 64
_IC_MIN_POINTS = 2**18
# Points on the Kassam-Trefethen contour (a circle of radius 1 around each h L).
_CONTOUR_POINTS = 64
# Upper bound on len(x) * n_modes for the trigonometric interpolation matrices
# (phase, cosine and sine, about 16 MiB each) regardless of the grid size.
_MAX_BLOCK_ELEMENTS = 2_000_000
# Output intervals whose step lengths differ by less than this relative amount
# share one set of ETDRK4 coefficients (linspace intervals differ by ulps).
_STEP_REUSE_RTOL = 1e-12

_DEFAULT_LAM = 1e-4
_DEFAULT_EPS = 5.0
_DEFAULT_NX_SPECTRAL = 2048
_DEFAULT_DT = 2e-3


def allen_cahn_initial_condition(x: np.ndarray) -> np.ndarray:
    """The benchmark initial condition ``u(x, 0) = x^2 cos(pi x)``, elementwise."""
    x = np.asarray(x, dtype=np.float64)
    return x**2 * np.cos(np.pi * x)


def _checked_nx_spectral(nx_spectral, caller: str) -> int:
    if (
        isinstance(nx_spectral, bool)
        or not isinstance(nx_spectral, numbers.Integral)
        or nx_spectral < 8
        or nx_spectral % 2
    ):
        raise ValueError(
            f"{caller}: nx_spectral must be an even integer >= 8, got {nx_spectral!r}"
        )
    return int(nx_spectral)


def _evaluate_initial_condition(initial_condition, x: np.ndarray, caller: str) -> np.ndarray:
    values = np.asarray(initial_condition(x), dtype=np.float64)
    if values.shape != x.shape:
        raise ValueError(
            f"{caller}: initial_condition must map an array of shape {x.shape} to the same "
            f"shape, got {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{caller}: initial_condition must return finite values")
    return values


def _etdrk4_coefficients(linear: np.ndarray, h: float) -> tuple[np.ndarray, ...]:
    """ETDRK4 coefficients for the diagonal linear operator ``linear`` and step ``h``.

    Kassam & Trefethen (2005): each ``phi``-type function of ``z = h L`` is the
    mean of its values on a circle of radius 1 around ``z``, which is exact for
    entire functions up to the trapezoidal-rule error (here ~1e-16) and never
    divides by a small ``z``. ``L`` is real, so the real part is taken.

    Returns:
        ``(E, E2, Q, f1, f2, f3)``, each of the shape of ``linear``.
    """
    z = h * linear
    roots = np.exp(1j * np.pi * (np.arange(1, _CONTOUR_POINTS + 1) - 0.5) / _CONTOUR_POINTS)
    lr = z[:, None] + roots[None, :]
    exp_lr = np.exp(lr)
    q = h * np.mean((np.exp(lr / 2.0) - 1.0) / lr, axis=1).real
    lr3 = lr**3
    f1 = h * np.mean((-4.0 - lr + exp_lr * (4.0 - 3.0 * lr + lr**2)) / lr3, axis=1).real
    f2 = h * np.mean((2.0 + lr + exp_lr * (-2.0 + lr)) / lr3, axis=1).real
    f3 = h * np.mean((-4.0 - 3.0 * lr - lr**2 + exp_lr * (4.0 - lr)) / lr3, axis=1).real
    return np.exp(z), np.exp(z / 2.0), q, f1, f2, f3


def _fourier_evaluate(coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate ``sum_m c_m exp(i pi m (x + 1))`` for real series given by ``m >= 0``.

    Points are first reduced to ``(x + 1) mod 2`` and deduplicated, so points
    one period apart (``x = -1`` and ``x = 1``) get bit-identical values.

    Args:
        coefficients: ``c_m`` for ``m = 0 .. M``, shape ``(M + 1, nt)``; the
            modes ``-m`` are the complex conjugates.
        x: Points, shape ``(nx,)``.

    Returns:
        Real values, shape ``(nx, nt)``.
    """
    reduced, inverse = np.unique(np.mod(x + 1.0, 2.0), return_inverse=True)
    modes = np.arange(coefficients.shape[0], dtype=np.float64)
    weighted = coefficients.copy()
    weighted[1:] *= 2.0
    u = np.empty((reduced.size, coefficients.shape[1]), dtype=np.float64)
    chunk = max(1, _MAX_BLOCK_ELEMENTS // max(1, modes.size))
    for start in range(0, reduced.size, chunk):
        block = reduced[start : start + chunk]
        # pi m (x + 1) reduced mod 2 pi before the trig functions.
        phase = np.pi * np.mod(block[:, None] * modes[None, :], 2.0)
        u[start : start + chunk] = np.cos(phase) @ weighted.real - np.sin(phase) @ weighted.imag
    return u[inverse.reshape(-1)]


def allen_cahn_spectral(
    x: np.ndarray,
    t: np.ndarray,
    lam: float = _DEFAULT_LAM,
    eps: float = _DEFAULT_EPS,
    nx_spectral: int = _DEFAULT_NX_SPECTRAL,
    dt: float = _DEFAULT_DT,
    initial_condition: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    r"""Solve ``u_t = lam u_xx + eps (u - u^3)``, 2-periodic on ``[-1, 1]``.

    Fourier-Galerkin in space with ``nx_spectral`` grid points (modes
    ``|m| < nx_spectral / 2`` of ``exp(i pi m x)``, cubic term dealiased on
    ``2 nx_spectral`` points) and ETDRK4 in time with the Kassam-Trefethen
    contour evaluation; see the module docstring. The series is evaluated at
    ``x`` by exact trigonometric interpolation, so ``x`` need not be the
    spectral grid.

    Accuracy for the defaults (``lam = 1e-4``, ``eps = 5``,
    ``nx_spectral = 2048``, ``dt = 2e-3``) on ``t = 0.01, 0.02, ..., 1``:
    within about 4e-9 of a run with ``nx_spectral = 8192`` and ``dt = 5e-4``
    (largest at ``t = 0.01``, while the corner of the initial condition is
    still being smoothed; about 3e-10 at ``t = 1``). ``nx_spectral = 1024``
    is off by about 7e-6 at ``t = 0.01`` and 512 by 5e-6 at ``t = 1``.

    Args:
        x: Points in space, shape ``(nx,)``. Any real values are accepted; the
            solution is 2-periodic.
        t: Times, shape ``(nt,)``, all ``>= 0``, any order, repeats allowed.
            ``t == 0`` returns ``initial_condition(x)`` exactly (not its
            truncated Fourier series).
        lam: Diffusion coefficient, ``> 0``.
        eps: Reaction coefficient, ``>= 0`` (``0`` gives the heat equation).
        nx_spectral: Size of the Fourier grid, an even integer ``>= 8``.
        dt: Largest time step, ``> 0``. Each interval between sorted output
            times is divided into ``ceil(interval / dt)`` equal steps.
        initial_condition: Vectorised callable mapping a float64 array of
            points in ``[-1, 1)`` to ``u(x, 0)`` of the same shape; default
            ``x^2 cos(pi x)``. It is projected onto the retained modes via an
            FFT on a grid of at least ``max(64 nx_spectral, 2^18)`` points.

    Returns:
        ``u`` with ``u[i, j] = u(x[i], t[j])``, shape ``(nx, nt)``, float64.

    Raises:
        ValueError: for ``lam <= 0``, ``eps < 0``, ``dt <= 0`` (or any of them
            non-finite), ``nx_spectral`` not an even integer ``>= 8``,
            non-1-D or non-finite ``x``/``t``, a negative ``t``, or an
            ``initial_condition`` returning the wrong shape or non-finite
            values.
    """
    caller = "allen_cahn_spectral"
    lam = positive_float(caller, "lam", lam)
    eps = nonnegative_float(caller, "eps", eps)
    nx_spectral = _checked_nx_spectral(nx_spectral, caller)
    dt = positive_float(caller, "dt", dt)
    x = finite_1d(caller, "x", x)
    t = finite_1d(caller, "t", t)
    if np.any(t < 0):
        raise ValueError(f"{caller}: t must be >= 0, got {t[t < 0][:3]}")
    if initial_condition is None:
        initial_condition = allen_cahn_initial_condition
    elif not callable(initial_condition):
        raise ValueError(
            f"{caller}: initial_condition must be callable or None, "
            f"got {type(initial_condition).__name__}"
        )

    n = nx_spectral
    n_modes = n // 2  # m = 0 .. n/2 - 1; the Nyquist mode stays zero
    n_padded = 2 * n

    # Projection of the initial condition: coefficients c_m of
    # sum_m c_m exp(i pi m (x + 1)), from an FFT on a finer grid starting at -1.
    n_fine = max(_IC_OVERSAMPLING, -(-_IC_MIN_POINTS // n)) * n
    x_fine = -1.0 + 2.0 * np.arange(n_fine) / n_fine
    u0_fine = _evaluate_initial_condition(initial_condition, x_fine, caller)
    c = np.fft.rfft(u0_fine)[:n_modes] / n_fine

    wavenumber = np.pi * np.arange(n_modes)
    linear = eps - lam * wavenumber**2

    def nonlinear(coefficients: np.ndarray) -> np.ndarray:
        # Zero-padded to 2n points: the cube of a series with |m| < n/2 has
        # |m| < 3n/2, which does not alias into |m| < n/2 on 2n points.
        padded = np.zeros(n_padded // 2 + 1, dtype=np.complex128)
        padded[:n_modes] = coefficients
        values = np.fft.irfft(padded, n=n_padded) * n_padded
        return (-eps / n_padded) * np.fft.rfft(values**3)[:n_modes]

    order = np.argsort(t, kind="stable")
    u = np.empty((x.size, t.size), dtype=np.float64)
    initial = t == 0
    if np.any(initial):
        u[:, initial] = _evaluate_initial_condition(initial_condition, x, caller)[:, None]

    positive = order[~initial[order]]
    snapshots = np.empty((n_modes, positive.size), dtype=np.complex128)
    current_time = 0.0
    step = None
    coefficients_for_step = None
    for column, index in enumerate(positive):
        interval = t[index] - current_time
        if interval > 0:
            n_steps = int(np.ceil(interval / dt * (1.0 - 1e-12)))
            h = interval / n_steps
            if step is None or abs(h - step) > _STEP_REUSE_RTOL * step:
                step = h
                coefficients_for_step = _etdrk4_coefficients(linear, h)
            e, e2, q, f1, f2, f3 = coefficients_for_step
            for _ in range(n_steps):
                nv = nonlinear(c)
                a = e2 * c + q * nv
                na = nonlinear(a)
                b = e2 * c + q * na
                nb = nonlinear(b)
                cc = e2 * a + q * (2.0 * nb - nv)
                nc = nonlinear(cc)
                c = e * c + nv * f1 + 2.0 * (na + nb) * f2 + nc * f3
            current_time = t[index]
        snapshots[:, column] = c
    if positive.size:
        u[:, positive] = _fourier_evaluate(snapshots, x)
    return u


def allen_cahn_reference(
    lam: float = _DEFAULT_LAM,
    eps: float = _DEFAULT_EPS,
    nx: int = 201,
    nt: int = 101,
    nx_spectral: int = _DEFAULT_NX_SPECTRAL,
    dt: float = _DEFAULT_DT,
) -> dict[str, np.ndarray]:
    """Spectral Allen-Cahn solution on a uniform grid, cached on disk.

    The grid is ``x = linspace(-1, 1, nx)`` (both ends included; the values
    at ``x = -1`` and ``x = 1`` are equal by periodicity) and
    ``t = linspace(0, 1, nt)``, the initial condition ``x^2 cos(pi x)``.
    Results are stored through :func:`lightning_pde.reference.cached_array`
    under the name ``"allen_cahn_spectral"`` keyed by all six arguments.

    Args:
        lam: Diffusion coefficient, ``> 0``.
        eps: Reaction coefficient, ``>= 0``.
        nx: Number of grid points in space, ``>= 2``.
        nt: Number of grid points in time, ``>= 2``.
        nx_spectral: Fourier grid size, see :func:`allen_cahn_spectral`.
        dt: Largest time step, see :func:`allen_cahn_spectral`.

    Returns:
        Dict with ``"x"`` of shape ``(nx,)``, ``"t"`` of shape ``(nt,)`` and
        ``"u"`` of shape ``(nx, nt)`` with ``u[i, j] = u(x[i], t[j])``, all
        float64.

    Raises:
        ValueError: for ``nx`` or ``nt`` below 2 or an invalid ``lam``,
            ``eps``, ``nx_spectral`` or ``dt`` (see :func:`allen_cahn_spectral`).
    """
    caller = "allen_cahn_reference"
    for argument, value in (("nx", nx), ("nt", nt)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
            raise ValueError(f"{caller}: {argument} must be an integer >= 2, got {value!r}")
    # Validate before touching the cache so bad input never creates files.
    params = {
        "lam": positive_float(caller, "lam", lam),
        "eps": nonnegative_float(caller, "eps", eps),
        "nx": int(nx),
        "nt": int(nt),
        "nx_spectral": _checked_nx_spectral(nx_spectral, caller),
        "dt": positive_float(caller, "dt", dt),
    }

    def compute() -> dict[str, np.ndarray]:
        x = np.linspace(-1.0, 1.0, params["nx"])
        t = np.linspace(0.0, 1.0, params["nt"])
        u = allen_cahn_spectral(
            x,
            t,
            lam=params["lam"],
            eps=params["eps"],
            nx_spectral=params["nx_spectral"],
            dt=params["dt"],
        )
        return {"x": x, "t": t, "u": u}

    return cached_array("allen_cahn_spectral", params, compute)
