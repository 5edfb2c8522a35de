"""Tests for the Cole-Hopf Burgers reference solution and its disk cache."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

import lightning_pde.reference.burgers as burgers_module
from lightning_pde.reference import (
    burgers_reference,
    cache_dir,
    cached_array,
    cole_hopf_burgers,
)

BENCHMARK_NU = 0.01 / np.pi
SMOOTH_NU = 0.05


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Point the cache at a fresh directory so tests never touch ~/.cache."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("LPDE_CACHE_DIR", str(directory))
    return directory


# --------------------------------------------------------------------------
# Cole-Hopf solution
# --------------------------------------------------------------------------


def test_shape_dtype_and_initial_condition_exact():
    x = np.linspace(-1.0, 1.0, 17)
    t = np.array([0.0, 0.3, 0.0, 1.0])
    u = cole_hopf_burgers(x, t, BENCHMARK_NU)
    assert u.shape == (17, 4)
    assert u.dtype == np.float64
    np.testing.assert_array_equal(u[:, 0], -np.sin(np.pi * x))
    np.testing.assert_array_equal(u[:, 2], -np.sin(np.pi * x))


@pytest.mark.parametrize("nu", [BENCHMARK_NU, SMOOTH_NU])
def test_small_time_limit_matches_initial_condition(nu):
    x = np.linspace(-1.0, 1.0, 201)
    u = cole_hopf_burgers(x, np.array([1e-6]), nu)
    assert np.abs(u[:, 0] + np.sin(np.pi * x)).max() < 1e-5


def test_quadrature_converged_on_benchmark_grid():
    x = np.linspace(-1.0, 1.0, 256)
    t = np.linspace(0.0, 1.0, 100)
    difference = cole_hopf_burgers(x, t, BENCHMARK_NU, 200) - cole_hopf_burgers(
        x, t, BENCHMARK_NU, 150
    )
    # Observed: about 2e-15.
    assert np.abs(difference).max() < 1e-10


def _finite_difference_burgers(n_intervals: int, nu: float, times: np.ndarray) -> np.ndarray:
    """Method-of-lines solve with second-order central differences.

    Conservative form ``u_t = -(u^2/2)_x + nu u_xx`` on ``n_intervals + 1``
    uniform points with Dirichlet ends, integrated by RK45 with tolerances far
    below the spatial error.

    Returns:
        ``u`` of shape ``(n_intervals + 1, len(times))``.
    """
    h = 2.0 / n_intervals
    x = np.linspace(-1.0, 1.0, n_intervals + 1)

    def rhs(_t, interior):
        u = np.concatenate(([0.0], interior, [0.0]))
        flux_difference = (u[2:] ** 2 - u[:-2] ** 2) / (4.0 * h)
        laplacian = (u[2:] - 2.0 * u[1:-1] + u[:-2]) / h**2
        return -flux_difference + nu * laplacian

    solution = solve_ivp(
        rhs,
        (0.0, float(times[-1])),
        -np.sin(np.pi * x[1:-1]),
        method="RK45",
        t_eval=times,
        rtol=1e-10,
        atol=1e-12,
    )
    assert solution.success, solution.message
    u = np.zeros((n_intervals + 1, times.size))
    u[1:-1] = solution.y
    return u


def test_agrees_with_independent_finite_difference_solve():
    """Cole-Hopf vs a Richardson-extrapolated finite-difference solve, nu = 0.05.

    The central-difference error expands in even powers of h, so combining
    200 and 400 intervals as ``(4 u_400 - u_200) / 3`` is fourth order. The
    plain 400-interval solve is off by ~6e-5 relative L2; the extrapolated one
    by ~9e-8 at t = 0.25, 0.5, 1.0 (about 0.6 s), checked here against 1e-6.
    """
    times = np.array([0.25, 0.5, 1.0])
    coarse = _finite_difference_burgers(200, SMOOTH_NU, times)
    fine = _finite_difference_burgers(400, SMOOTH_NU, times)
    extrapolated = (4.0 * fine[::2] - coarse) / 3.0

    x = np.linspace(-1.0, 1.0, 201)
    exact = cole_hopf_burgers(x, times, SMOOTH_NU)
    relative_l2 = np.linalg.norm(extrapolated - exact, axis=0) / np.linalg.norm(exact, axis=0)
    assert np.all(relative_l2 < 1e-6), relative_l2


def test_steepest_gradient_matches_basdevant():
    """min_t u_x(0, t) = -152.00516 at t = 1.6037/pi for nu = 0.01/pi (Basdevant et al. 1986)."""
    step = 1e-5  # front width ~ 1/152, so the O(step^2) error is ~1e-6 relative

    def slope_at_origin(t):
        u = cole_hopf_burgers(np.array([-step, step]), np.array([t]), BENCHMARK_NU)[:, 0]
        return (u[1] - u[0]) / (2.0 * step)

    result = minimize_scalar(
        slope_at_origin,
        bounds=(1.5 / np.pi, 1.7 / np.pi),
        method="bounded",
        options={"xatol": 1e-8},
    )
    assert result.fun == pytest.approx(-152.00516, rel=1e-3)
    assert result.x * np.pi == pytest.approx(1.6037, abs=1e-3)


def _relative_pde_residual(n_intervals: int, t0: float) -> float:
    """max |u_t + u u_x - nu u_xx| / max |nu u_xx| with central differences, nu = 0.05."""
    x = np.linspace(-1.0, 1.0, n_intervals + 1)
    h = x[1] - x[0]
    dt = h
    u = cole_hopf_burgers(x, np.array([t0 - dt, t0, t0 + dt]), SMOOTH_NU)
    now = u[:, 1]
    u_t = (u[1:-1, 2] - u[1:-1, 0]) / (2.0 * dt)
    u_x = (now[2:] - now[:-2]) / (2.0 * h)
    u_xx = (now[2:] - 2.0 * now[1:-1] + now[:-2]) / h**2
    residual = u_t + now[1:-1] * u_x - SMOOTH_NU * u_xx
    return np.abs(residual).max() / np.abs(SMOOTH_NU * u_xx).max()


@pytest.mark.parametrize("t0", [0.25, 0.5, 1.0])
def test_pde_residual_small_and_second_order(t0):
    coarse = _relative_pde_residual(400, t0)
    fine = _relative_pde_residual(800, t0)
    # Observed ~1e-4 at 800 intervals, dominated by the stencils' own O(h^2)
    # truncation error, hence the factor 4 per halving.
    assert fine < 5e-4
    assert 3.5 < coarse / fine < 4.5


@pytest.mark.parametrize("nu", [BENCHMARK_NU, SMOOTH_NU])
def test_boundary_values_and_odd_symmetry(nu):
    t = np.linspace(0.0, 1.0, 41)
    boundary = cole_hopf_burgers(np.array([-1.0, 1.0]), t, nu)
    assert np.abs(boundary).max() < 1e-12

    x = np.linspace(0.0, 1.0, 129)
    right = cole_hopf_burgers(x, t, nu)
    left = cole_hopf_burgers(-x, t, nu)
    np.testing.assert_allclose(left, -right, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"nu": 0.0}, "nu"),
        ({"nu": -1.0}, "nu"),
        ({"nu": float("nan")}, "nu"),
        ({"t": np.array([0.5, -0.1])}, "t"),
        ({"n_quadrature": 1}, "n_quadrature"),
        ({"n_quadrature": 301}, "n_quadrature"),
        ({"n_quadrature": 20.0}, "n_quadrature"),
        ({"x": np.zeros((2, 2))}, "x"),
    ],
)
def test_bad_input_names_the_argument(kwargs, argument):
    arguments = {"x": np.linspace(-1, 1, 5), "t": np.array([0.5]), "nu": SMOOTH_NU}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=rf"cole_hopf_burgers: {argument} must"):
        cole_hopf_burgers(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"nu": -1.0}, "nu"),
        ({"nx": 1}, "nx"),
        ({"nt": 0}, "nt"),
        ({"n_quadrature": 400}, "n_quadrature"),
    ],
)
def test_reference_bad_input_names_the_argument(kwargs, argument, isolated_cache):
    with pytest.raises(ValueError, match=rf"burgers_reference: {argument} must"):
        burgers_reference(**kwargs)
    # Validation happens before the cache is consulted.
    assert not isolated_cache.exists() or not any(isolated_cache.iterdir())


# --------------------------------------------------------------------------
# Reference grid and cache
# --------------------------------------------------------------------------

SMALL_GRID = {"nu": SMOOTH_NU, "nx": 33, "nt": 9, "n_quadrature": 40}


def _forbid_recompute(monkeypatch):
    def fail(*_args, **_kwargs):
        raise AssertionError("cole_hopf_burgers was called although the result is cached")

    monkeypatch.setattr(burgers_module, "cole_hopf_burgers", fail)


def test_reference_grid_and_values(isolated_cache):
    reference = burgers_reference(**SMALL_GRID)
    assert set(reference) == {"x", "t", "u"}
    np.testing.assert_array_equal(reference["x"], np.linspace(-1, 1, 33))
    np.testing.assert_array_equal(reference["t"], np.linspace(0, 1, 9))
    assert reference["u"].shape == (33, 9)
    np.testing.assert_array_equal(
        reference["u"], cole_hopf_burgers(reference["x"], reference["t"], SMOOTH_NU, 40)
    )
    assert cache_dir() == isolated_cache


def test_second_call_reads_from_disk(isolated_cache, monkeypatch):
    first = burgers_reference(**SMALL_GRID)
    files = sorted(isolated_cache.iterdir())
    assert len(files) == 1
    assert files[0].name.startswith("burgers_cole_hopf-") and files[0].suffix == ".npz"

    _forbid_recompute(monkeypatch)
    second = burgers_reference(**SMALL_GRID)
    for key in ("x", "t", "u"):
        np.testing.assert_array_equal(second[key], first[key])


def test_different_parameters_use_different_files(isolated_cache):
    burgers_reference(**SMALL_GRID)
    # One ulp apart must not share a cache entry.
    burgers_reference(**{**SMALL_GRID, "nu": np.nextafter(SMOOTH_NU, 1.0)})
    burgers_reference(**{**SMALL_GRID, "nt": 10})
    assert len(list(isolated_cache.glob("*.npz"))) == 3


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_file_is_recomputed(isolated_cache, damage):
    expected = burgers_reference(**SMALL_GRID)
    (path,) = isolated_cache.glob("*.npz")
    if damage == "garbage":
        path.write_bytes(b"definitely not an npz archive")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"")

    with pytest.warns(RuntimeWarning, match="unreadable cache file"):
        recomputed = burgers_reference(**SMALL_GRID)
    np.testing.assert_array_equal(recomputed["u"], expected["u"])
    # The file was rewritten, so the next call is a clean hit.
    with np.load(path) as archive:
        np.testing.assert_array_equal(archive["u"], expected["u"])


def test_write_is_atomic(isolated_cache, monkeypatch):
    burgers_reference(**SMALL_GRID)
    (entry,) = isolated_cache.iterdir()  # exactly one file: no temporaries left
    assert entry.suffix == ".npz"

    real_savez = np.savez

    def crash_midway(file, **arrays):
        real_savez(file, **arrays)
        raise KeyboardInterrupt("simulated crash while writing")

    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        cached_array("crashy", {"a": 1}, lambda: {"v": np.arange(3)})
    # Neither a partial target nor the temporary file may survive the crash.
    assert list(isolated_cache.iterdir()) == [entry]


def test_cached_array_keys_and_round_trip(isolated_cache):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], dtype=np.int32)}

    params = {"scale": 0.1, "sizes": [2, 3], "mode": "x"}
    first = cached_array("roundtrip", params, compute)
    second = cached_array("roundtrip", dict(reversed(list(params.items()))), compute)
    assert len(calls) == 1  # key order does not matter
    for key in ("a", "b"):
        np.testing.assert_array_equal(second[key], first[key])
        assert second[key].dtype == first[key].dtype

    # The neighbouring double of 0.1 is a different computation.
    cached_array("roundtrip", {**params, "scale": float(np.nextafter(0.1, 1.0))}, compute)
    assert len(calls) == 2

    with pytest.raises(ValueError, match="name"):
        cached_array("../escape", {}, compute)
    with pytest.raises(TypeError, match="params"):
        cached_array("roundtrip", {"bad": object()}, compute)
