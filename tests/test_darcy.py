"""DarcyFlow: the finite-volume operator (torch) is the solver's sparse matrix, the solver converges at second order
against manufactured solutions, every generated pair solves its system, generation is deterministic and cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_pde.data.darcy import (DarcyFlow, darcy_fields_residual, darcy_matrix, darcy_relative_residual,
                                      darcy_residual, gaussian_random_field, solve_darcy)
from lightning_pde.data.mixture import SampleDataModule


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_DIR", str(tmp_path))


def cell_centres(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = (np.arange(n) + 0.5) / n
    return np.meshgrid(x, x, indexing="ij")


def test_torch_operator_is_the_solver_matrix():
    rng = np.random.default_rng(0)
    k = np.where(gaussian_random_field(1, 8, 2.0, 3.0, rng)[0] >= 0, 12.0, 3.0)
    p = rng.standard_normal((8, 8))
    by_matrix = darcy_matrix(k) @ p.ravel() - 1.0
    by_torch = darcy_residual(torch.from_numpy(k), torch.from_numpy(p)).numpy().ravel()
    np.testing.assert_allclose(by_torch, by_matrix, rtol=1e-12, atol=1e-9)
    assert abs(darcy_matrix(k) - darcy_matrix(k).T).max() < 1e-9  # harmonic-mean transmissibilities: symmetric


def test_operator_by_hand_on_a_2x2_grid():
    """h = 1/2: the face between K = 1 and K = 3 has 2 * 3 / 4 = 1.5; each cell has two walls at distance h/2."""
    k = torch.tensor([[1.0, 3.0], [3.0, 1.0]], dtype=torch.float64)
    p = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    # cell [0, 0]: two interior faces 1.5 (p_P - 0) and two walls 2 K_P p_P, all over h^2 = 1/4
    expected = torch.tensor([[(1.5 + 1.5 + 2 + 2) * 4.0, -1.5 * 4], [-1.5 * 4, 0.0]], dtype=torch.float64) - 1
    torch.testing.assert_close(darcy_residual(k, p), expected)


def test_residual_is_batched_and_differentiable():
    k = (2 + torch.rand(3, 5, 5, dtype=torch.float64)).requires_grad_(True)
    p = torch.randn(3, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda k, p: darcy_residual(k, p), (k, p))
    single = darcy_residual(k[1], p[1])
    torch.testing.assert_close(darcy_residual(k, p)[1], single)
    fields = torch.stack([k, p], 1)
    torch.testing.assert_close(darcy_fields_residual(fields), darcy_residual(k, p))


@pytest.mark.parametrize("varying", [False, True])
def test_solver_converges_at_second_order(varying):
    """p = sin(pi x) sin(pi y) e^x (zero on the walls); K = 3 or K = 2 + sin(2 pi x) cos(3 y); f = -div(K grad p)
    at the cell centres. The max error falls 4x per halving of h."""
    errors = []
    for n in (8, 16, 32, 64):
        x, y = cell_centres(n)
        s, c = np.sin(np.pi * x), np.cos(np.pi * x)
        p = s * np.sin(np.pi * y) * np.exp(x)
        p_x = (np.pi * c + s) * np.sin(np.pi * y) * np.exp(x)
        p_xx = (2 * np.pi * c + (1 - np.pi**2) * s) * np.sin(np.pi * y) * np.exp(x)
        p_y = np.pi * s * np.cos(np.pi * y) * np.exp(x)
        p_yy = -np.pi**2 * p
        if varying:
            k = 2 + np.sin(2 * np.pi * x) * np.cos(3 * y)
            k_x, k_y = 2 * np.pi * np.cos(2 * np.pi * x) * np.cos(3 * y), -3 * np.sin(2 * np.pi * x) * np.sin(3 * y)
        else:
            k, k_x, k_y = np.full_like(x, 3.0), 0.0, 0.0
        f = -(k * (p_xx + p_yy) + k_x * p_x + k_y * p_y)
        errors.append(np.abs(solve_darcy(k, f) - p).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 2e-3
    assert np.all(orders > 1.85), orders  # measured 1.98-2.00 (constant K), 1.87-1.97 (varying K)


def test_generated_pairs_solve_their_system_and_follow_the_design():
    data = DarcyFlow(n=16, n_train=40, n_val=8, batch_size=8, seed=3)
    data.setup()
    assert data.train.shape == (40, 2, 16, 16) and data.val.shape == (8, 2, 16, 16)
    assert data.train.dtype == torch.float32
    k = data.train[:, 0]
    assert set(k.unique().tolist()) == {3.0, 12.0}
    assert 0.3 < float((k == 12).double().mean()) < 0.7  # thresholded at the field's zero mean
    assert float(data.train[:, 1].min()) > 0  # -div(K grad p) = 1 > 0 with p = 0 on the walls: p > 0 inside
    # Every stored pair: the residual relative to f = 1 is float32 round-off of p (the float64 solve gives ~1e-13)
    assert float(darcy_relative_residual(data.train.double()).max()) < 1e-5
    assert float(darcy_relative_residual(data.val.double()).max()) < 1e-5
    p64 = solve_darcy(k[:4].double().numpy())
    assert float(darcy_relative_residual(torch.stack([k[:4].double(), torch.from_numpy(p64)], 1)).max()) < 1e-11
    # a wrong pair is far from solving it: the check can fail
    wrong = torch.stack([data.train[:4, 0], data.train[4:8, 1]], 1).double()
    assert float(darcy_relative_residual(wrong).min()) > 0.1


def test_default_set_is_32_cells_and_64_by_argument():
    assert DarcyFlow().data_shape == (2, 32, 32)
    data = DarcyFlow(n=64, n_train=2, n_val=1)
    data.setup()
    assert data.train.shape == (2, 2, 64, 64) and float(darcy_relative_residual(data.train.double()).max()) < 1e-4
    assert isinstance(data, SampleDataModule) and len(data.train_dataloader()) == 0  # batch 64 > 2, drop_last


def test_deterministic_from_the_seed_and_cached(tmp_path):
    first = DarcyFlow(n=8, n_train=6, n_val=2, seed=5)
    first.setup()
    assert len(list(tmp_path.glob("darcy_flow-*.npz"))) == 2  # train and validation sets
    for path in tmp_path.glob("darcy_flow-*.npz"):
        path.unlink()
    again = DarcyFlow(n=8, n_train=6, n_val=2, seed=5)
    again.setup()  # recomputed from nothing: the same arrays
    assert torch.equal(again.train, first.train) and torch.equal(again.val, first.val)
    cached = DarcyFlow(n=8, n_train=6, n_val=2, seed=5)
    cached.setup()
    assert torch.equal(cached.train, first.train)
    other = DarcyFlow(n=8, n_train=6, n_val=2, seed=6)
    other.setup()
    assert not torch.equal(other.train[:, 0], first.train[:, 0])
    assert not torch.equal(first.val[:, 0], first.train[:2, 0])  # validation is its own draw
    swapped = DarcyFlow(n=8, n_train=6, n_val=2, seed=5, k_high=5.0, k_low=1.0)
    swapped.setup()  # other values, same field: same geometry
    assert torch.equal(swapped.train[:, 0] == 5.0, first.train[:, 0] == 12.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 1}, "DarcyFlow: n must be an integer >= 2, got 1"),
    ({"n": 32.0}, "n must be an integer"),
    ({"k_high": 0.0}, "k_high must be a finite number > 0, got 0.0"),
    ({"k_low": -3.0}, "k_low must be a finite number > 0, got -3.0"),
    ({"k_low": float("nan")}, "k_low must be a finite number > 0"),
    ({"tau": 0}, "tau must be"),
    ({"alpha": -1.0}, "alpha must be"),
    ({"seed": -1}, "DarcyFlow: seed must be an integer >= 0, got -1"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"n_train": 0}, "n_train must be"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DarcyFlow(**kwargs)


def test_bad_operator_inputs_are_named():
    with pytest.raises(ValueError, match="K and p must both be"):
        darcy_residual(torch.ones(4, 4), torch.ones(4, 5))
    with pytest.raises(ValueError, match="K and p must both be"):
        darcy_residual(torch.ones(3, 4), torch.ones(3, 4))
    with pytest.raises(ValueError, match="fields must be \\(B, 2, n, n\\)"):
        darcy_fields_residual(torch.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="permeability must be finite and > 0"):
        solve_darcy(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="permeability must be \\(n, n\\) or \\(B, n, n\\)"):
        solve_darcy(np.ones((4, 5)))
