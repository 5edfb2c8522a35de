import pytest
import torch

from lightning_pde.derivatives import Autograd, parse_derivative


def field(x):
    # u = sin(x) exp(2t) + x^3 t^2,  v = x t
    xs, ts = x[:, :1], x[:, 1:2]
    return torch.cat([torch.sin(xs) * torch.exp(2 * ts) + xs**3 * ts**2, xs * ts], dim=1)


def test_derivatives_match_analytic_ones_in_float64():
    x = torch.randn(40, 2, dtype=torch.float64)
    f = Autograd().fields(field, x, ("x", "t"), ("u", "v"))
    xs, ts = x[:, 0], x[:, 1]
    expect = {
        "u": torch.sin(xs) * torch.exp(2 * ts) + xs**3 * ts**2,
        "u_x": torch.cos(xs) * torch.exp(2 * ts) + 3 * xs**2 * ts**2,
        "u_t": 2 * torch.sin(xs) * torch.exp(2 * ts) + 2 * xs**3 * ts,
        "u_xx": -torch.sin(xs) * torch.exp(2 * ts) + 6 * xs * ts**2,
        "u_tt": 4 * torch.sin(xs) * torch.exp(2 * ts) + 2 * xs**3,
        "u_xt": 2 * torch.cos(xs) * torch.exp(2 * ts) + 6 * xs**2 * ts,
        "u_tx": 2 * torch.cos(xs) * torch.exp(2 * ts) + 6 * xs**2 * ts,
        "u_xxt": -2 * torch.sin(xs) * torch.exp(2 * ts) + 12 * xs * ts,
        "v_x": ts,
        "v_xt": torch.ones_like(xs),
        "x": xs,
    }
    for key, value in expect.items():
        torch.testing.assert_close(f[key], value, rtol=1e-12, atol=1e-12, msg=key)
    torch.testing.assert_close(f.laplacian("u"), expect["u_xx"] + expect["u_tt"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f.grad("u"), torch.stack([expect["u_x"], expect["u_t"]], 1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f.d("u", "t", "x"), expect["u_xt"], rtol=1e-12, atol=1e-12)


def test_one_backward_pass_per_order(monkeypatch):
    """Burgers needs u_t, u_x and u_xx: two passes, because one pass yields every first derivative."""
    calls = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or grad(*a, **k))
    f = Autograd().fields(field, torch.randn(8, 2, dtype=torch.float64), ("x", "t"), ("u", "v"))
    f["u_t"], f["u_x"], f["u_xx"], f["u_t"]
    assert len(calls) == 2


def test_derivatives_carry_gradients_to_parameters():
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    f = Autograd().fields(net, torch.randn(16, 2), ("x", "t"), ("u",))
    f["u_xx"].square().mean().backward()
    # (the output bias does not enter u_xx, so it gets no gradient)
    assert net[0].weight.grad.abs().sum() > 0 and net[2].weight.grad.abs().sum() > 0


def test_names_parse_longest_input_first():
    assert parse_derivative("u_x1x2", ("x1", "x2"), ("u",)) == (0, (0, 1))
    assert parse_derivative("u_xt", ("x", "t"), ("u",)) == (0, (0, 1))
    assert parse_derivative("u", ("x", "t"), ("u",)) == (0, ())


@pytest.mark.parametrize("key", ["u_z", "w_x", "u_", "ux", "u_xz"])
def test_unknown_names_are_clear_errors(key):
    f = Autograd().fields(field, torch.randn(4, 2, dtype=torch.float64), ("x", "t"), ("u", "v"))
    with pytest.raises(KeyError, match="inputs are"):
        f[key]


def test_shape_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        Autograd().fields(field, torch.randn(4, 3), ("x", "t"), ("u", "v"))
    with pytest.raises(ValueError, match="network must return"):
        Autograd().fields(field, torch.randn(4, 2), ("x", "t"), ("u",))
