"""Tests for the Fourier/ETDRK4 Allen-Cahn reference solution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import lightning_pde.reference.allen_cahn as allen_cahn_module
from lightning_pde.reference import (
    allen_cahn_initial_condition,
    allen_cahn_reference,
    allen_cahn_spectral,
)

BENCHMARK = {"lam": 1e-4, "eps": 5.0}
SMOOTH = {"lam": 1e-2, "eps": 1.0}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Point the cache at a fresh directory so tests never touch ~/.cache."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("LPDE_CACHE_DIR", str(directory))
    return directory


# --------------------------------------------------------------------------
# Convergence and independent checks
# --------------------------------------------------------------------------


def test_defaults_self_converged():
    """Defaults vs twice the modes and half the step, benchmark parameters.

    Observed: about 3e-10 at all three times (the step-size error; both runs
    project the initial condition on the same 2^18-point grid). Against
    ``nx_spectral = 8192, dt = 5e-4`` the defaults are off by about 4e-9 at
    t = 0.01 (the corner of the periodic initial condition at x = +-1 is still
    being smoothed then) and 3e-10 at t = 1.
    """
    x = np.linspace(-1.0, 1.0, 201)
    t = np.array([0.01, 0.1, 1.0])
    default = allen_cahn_spectral(x, t)
    fine = allen_cahn_spectral(x, t, nx_spectral=4096, dt=1e-3)
    difference = np.abs(default - fine).max(axis=0)
    assert np.all(difference < 1e-6), difference


def _cosine_coefficients_of_initial_condition(n_modes: int) -> np.ndarray:
    """Exact b_m with x^2 cos(pi x) = sum_m b_m cos(pi m x) on [-1, 1].

    With I(n) = int_{-1}^{1} x^2 cos(pi n x) dx = 2/3 (n = 0) or
    4 (-1)^n / (pi n)^2, the product-to-sum formula gives
    b_m = (I(m + 1) + I(m - 1)) / 4, doubled for m >= 1.
    """

    def integral(n):
        n = np.abs(n).astype(np.float64)
        safe = np.where(n == 0, 1.0, n)
        return np.where(n == 0, 2.0 / 3.0, 4.0 * np.cos(np.pi * n) / (np.pi * safe) ** 2)

    m = np.arange(n_modes)
    b = (integral(m + 1) + integral(m - 1)) / 4.0
    b[1:] *= 2.0
    return b


def _cosine_galerkin_dop853(lam, eps, n_modes, times, x):
    """Independent solve: cosine-Galerkin (the solution is even) with DOP853.

    ``u = sum_{m < n_modes} b_m cos(pi m x)``; the cube is projected with the
    ``4 n_modes``-point trapezoidal rule, exact for the degree ``4 n_modes - 4``
    integrands, so this is the same semi-discretisation as
    :func:`allen_cahn_spectral` with ``nx_spectral = 2 n_modes`` but with exact
    initial coefficients, dense matrices instead of FFTs and an adaptive
    explicit integrator instead of ETDRK4.
    """
    m = np.arange(n_modes)
    points = 4 * n_modes
    grid = -1.0 + 2.0 * np.arange(points) / points
    synthesis = np.cos(np.pi * np.outer(grid, m))
    weights = np.full(n_modes, 2.0 / points)
    weights[0] = 1.0 / points
    analysis = synthesis.T * weights[:, None]
    decay = lam * (np.pi * m) ** 2

    def rhs(_t, b):
        return -decay * b + eps * (b - analysis @ (synthesis @ b) ** 3)

    solution = solve_ivp(
        rhs,
        (0.0, float(times[-1])),
        _cosine_coefficients_of_initial_condition(n_modes),
        method="DOP853",
        t_eval=times,
        rtol=1e-12,
        atol=1e-14,
    )
    assert solution.success, solution.message
    return np.cos(np.pi * np.outer(x, m)) @ solution.y


@pytest.mark.parametrize(
    ("parameters", "n_modes", "t_end"),
    [(SMOOTH, 64, 1.0), (BENCHMARK, 256, 1.0)],
    ids=["lam=1e-2,eps=1", "benchmark"],
)
def test_agrees_with_independent_dop853_solve(parameters, n_modes, t_end):
    # Observed: about 7e-10 (smooth) and 3e-10 (benchmark, the ETDRK4 step
    # error at dt = 2e-3); 1e-7 with the 64x-only oversampled projection.
    times = np.linspace(0.0, t_end, 6)[1:]
    x = np.linspace(-1.0, 1.0, 101)
    expected = _cosine_galerkin_dop853(parameters["lam"], parameters["eps"], n_modes, times, x)
    actual = allen_cahn_spectral(x, times, nx_spectral=2 * n_modes, **parameters)
    assert np.abs(actual - expected).max() < 1e-8


def test_heat_equation_modes_decay_exactly():
    """eps = 0: each Fourier mode decays like exp(-lam (pi m)^2 t)."""
    lam = 1e-2

    def initial(x):
        return 0.3 + np.cos(3 * np.pi * x) - 0.5 * np.sin(5 * np.pi * x)

    rng = np.random.default_rng(0)
    x = rng.uniform(-3.0, 3.0, 57)  # off the spectral grid, beyond one period
    t = np.array([0.05, 0.4, 1.0])
    u = allen_cahn_spectral(
        x, t, lam=lam, eps=0.0, nx_spectral=32, dt=0.1, initial_condition=initial
    )
    exact = (
        0.3
        + np.exp(-lam * (3 * np.pi) ** 2 * t) * np.cos(3 * np.pi * x)[:, None]
        - 0.5 * np.exp(-lam * (5 * np.pi) ** 2 * t) * np.sin(5 * np.pi * x)[:, None]
    )
    np.testing.assert_allclose(u, exact, rtol=0, atol=1e-12)


def _logistic(u0, eps, t):
    """Exact solution of u' = eps (u - u^3), u(0) = u0."""
    growth = np.exp(eps * t)
    return u0 * growth / np.sqrt(1.0 + u0**2 * (growth**2 - 1.0))


def test_constant_initial_condition_follows_exact_ode_with_fourth_order():
    """A constant state only feels the reaction: u' = eps (u - u^3), solved exactly."""
    eps = 5.0
    t = np.array([0.2, 0.6, 1.0])
    x = np.array([-1.0, 0.3])

    def constant(y):
        return np.full_like(y, 0.1)

    def error(dt):
        u = allen_cahn_spectral(
            x, t, lam=1e-4, eps=eps, nx_spectral=8, dt=dt, initial_condition=constant
        )
        return np.abs(u - _logistic(0.1, eps, t)).max()

    assert error(2e-3) < 1e-9  # observed 3e-10
    # ETDRK4 is fourth order: observed ratios 24, 19, 17.5, 16.7 for
    # dt = 0.1, 0.05, 0.025, 0.0125 (each vs half the step).
    coarse, fine = error(0.0125), error(0.00625)
    assert 14.0 < coarse / fine < 19.0


# --------------------------------------------------------------------------
# Benchmark solution and grid
# --------------------------------------------------------------------------


def test_benchmark_reference_is_metastable_even_and_periodic():
    reference = allen_cahn_reference()
    x, t, u = reference["x"], reference["t"], reference["u"]
    np.testing.assert_array_equal(x, np.linspace(-1.0, 1.0, 201))
    np.testing.assert_array_equal(t, np.linspace(0.0, 1.0, 101))
    assert u.shape == (201, 101) and u.dtype == np.float64
    np.testing.assert_array_equal(u[:, 0], x**2 * np.cos(np.pi * x))

    # Periodic: x = -1 and x = 1 are the same point; even initial data stays even.
    np.testing.assert_array_equal(u[0], u[-1])
    assert np.abs(u - u[::-1]).max() < 1e-12

    assert np.abs(u).max() < 1.01
    final = u[:, -1]
    assert final.max() > 0.98 and final.min() < -0.9999
    # Plateaus as in AC.mat: u ~ -1 near the ends, u ~ +1 at |x| ~ 0.3, the
    # interfaces near |x| = 0.5 and a dip at x = 0 where u(x, 0) has a minimum.
    assert np.all(final[np.abs(x) >= 0.6] < -0.99)
    assert np.all(final[(np.abs(x) >= 0.25) & (np.abs(x) <= 0.4)] > 0.98)
    assert abs(final[100]) < 0.1
    assert np.mean(np.abs(final) > 0.95) > 0.6


def test_time_order_and_repeats_do_not_matter():
    x = np.linspace(-1.0, 1.0, 9)
    kwargs = {"nx_spectral": 64, "dt": 1e-2, **SMOOTH}
    shuffled = allen_cahn_spectral(x, np.array([1.0, 0.0, 0.5, 0.25, 0.5]), **kwargs)
    ordered = allen_cahn_spectral(x, np.array([0.0, 0.25, 0.5, 1.0]), **kwargs)
    np.testing.assert_array_equal(shuffled, ordered[:, [3, 0, 2, 1, 2]])
    np.testing.assert_array_equal(ordered[:, 0], allen_cahn_initial_condition(x))


# --------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------

SMALL = {"lam": 1e-2, "eps": 1.0, "nx": 17, "nt": 5, "nx_spectral": 32, "dt": 1e-2}


def test_reference_matches_spectral_and_is_cached(isolated_cache, monkeypatch):
    first = allen_cahn_reference(**SMALL)
    assert set(first) == {"x", "t", "u"}
    direct = allen_cahn_spectral(
        first["x"], first["t"], lam=1e-2, eps=1.0, nx_spectral=32, dt=1e-2
    )
    np.testing.assert_array_equal(first["u"], direct)
    (path,) = isolated_cache.iterdir()
    assert path.name.startswith("allen_cahn_spectral-") and path.suffix == ".npz"

    def fail(*_args, **_kwargs):
        raise AssertionError("allen_cahn_spectral was called although the result is cached")

    monkeypatch.setattr(allen_cahn_module, "allen_cahn_spectral", fail)
    second = allen_cahn_reference(**SMALL)
    for key in ("x", "t", "u"):
        np.testing.assert_array_equal(second[key], first[key])


def test_different_parameters_use_different_files(isolated_cache):
    allen_cahn_reference(**SMALL)
    allen_cahn_reference(**{**SMALL, "eps": 2.0})
    allen_cahn_reference(**{**SMALL, "dt": 5e-3})
    allen_cahn_reference(**{**SMALL, "nx_spectral": 64})
    assert len(list(isolated_cache.glob("*.npz"))) == 4


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"lam": 0.0}, "lam"),
        ({"lam": -1e-4}, "lam"),
        ({"lam": float("inf")}, "lam"),
        ({"eps": -1.0}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"nx_spectral": 6}, "nx_spectral"),
        ({"nx_spectral": 65}, "nx_spectral"),
        ({"nx_spectral": 64.0}, "nx_spectral"),
        ({"dt": 0.0}, "dt"),
        ({"t": np.array([0.5, -0.1])}, "t"),
        ({"t": np.array([np.nan])}, "t"),
        ({"x": np.zeros((2, 2))}, "x"),
        ({"initial_condition": 3.0}, "initial_condition"),
        ({"initial_condition": lambda y: y[:-1]}, "initial_condition"),
        ({"initial_condition": lambda y: y / 0.0}, "initial_condition"),
    ],
)
def test_bad_input_names_the_argument(kwargs, argument):
    arguments = {"x": np.linspace(-1, 1, 5), "t": np.array([0.5]), "nx_spectral": 16, "dt": 0.1}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=rf"allen_cahn_spectral: {argument} must"):
        with np.errstate(divide="ignore", invalid="ignore"):
            allen_cahn_spectral(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"lam": -1.0}, "lam"),
        ({"eps": -0.5}, "eps"),
        ({"nx": 1}, "nx"),
        ({"nt": 0}, "nt"),
        ({"nx": 10.0}, "nx"),
        ({"nx_spectral": 2}, "nx_spectral"),
        ({"dt": -1e-3}, "dt"),
    ],
)
def test_reference_bad_input_names_the_argument(kwargs, argument, isolated_cache):
    with pytest.raises(ValueError, match=rf"allen_cahn_reference: {argument} must"):
        allen_cahn_reference(**kwargs)
    # Validation happens before the cache is consulted.
    assert not isolated_cache.exists() or not any(isolated_cache.iterdir())
