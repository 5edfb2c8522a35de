"""The forward-mode engine must match reverse mode (the reference) on random networks, parameter gradients included."""

import pytest
import torch

from lightning_pde.derivatives import Autograd, Forward, ForwardFields
from lightning_pde.nn import MLP


def names(d):
    """Inputs x, t for d = 2, else x1 ... x_{d-1}, t (so "u_x1x1" and "u_tt" parse)."""
    return ("x", "t") if d == 2 else (*(f"x{i}" for i in range(1, d)), "t")


def both(d, n=24, outputs=("u", "v"), seed=0, **forward_options):
    torch.manual_seed(seed)
    net = MLP(hidden=[16, 16], in_features=d, out_features=len(outputs)).double()
    x = torch.randn(n, d, dtype=torch.float64)
    inputs = names(d)
    return (net, Autograd().fields(net, x, inputs, outputs),
            Forward(**forward_options).fields(net, x, inputs, outputs))


def assert_close(actual, expected, msg=""):
    torch.testing.assert_close(actual, expected, rtol=1e-8, atol=1e-8, msg=msg)


def parameter_gradients(net, loss):
    net.zero_grad()
    loss.backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


@pytest.mark.parametrize("d", [2, 7])
def test_fields_match_reverse_mode(d):
    _, reverse, forward = both(d)
    x, t = reverse.input_names[0], reverse.input_names[-1]
    keys = ["u", "v", *(f"{o}_{i}" for o in ("u", "v") for i in reverse.input_names),
            f"u_{x}{x}", f"v_{x}{x}", f"u_{t}{t}", f"u_{x}{t}", f"u_{t}{x}", f"v_{x}{t}", f"u_{x}{x}{t}",
            f"v_{t}{x}{x}", f"u_{t}{t}{t}", x]
    for key in keys:
        assert_close(forward[key], reverse[key], msg=key)
    assert_close(forward.u, reverse.u)
    subset = list(reverse.input_names[: max(1, d - 1)])
    for output in ("u", "v"):
        assert_close(forward.laplacian(output), reverse.laplacian(output), msg=f"laplacian {output}")
        assert_close(forward.laplacian(output, subset), reverse.laplacian(output, subset), msg="subset")
        assert_close(forward.grad(output), reverse.grad(output), msg=f"grad {output}")
        assert_close(forward.grad(output, [t, x]), reverse.grad(output, [t, x]), msg="grad subset")
    assert_close(forward.derivatives_along("u", t, 3),
                 torch.stack([reverse["u"], reverse[f"u_{t}"], reverse[f"u_{t}{t}"], reverse[f"u_{t}{t}{t}"]]))


@pytest.mark.parametrize("d", [2, 7])
def test_vectorised_calls_in_chunks_give_the_same_numbers(d):
    _, reverse, forward = both(d, chunk_size=3)
    assert_close(forward.laplacian("v"), reverse.laplacian("v"))
    assert_close(forward.grad("u"), reverse.grad("u"))


def test_cached_derivatives_come_from_one_call_for_all_outputs(monkeypatch):
    import lightning_pde.derivatives.forward as module
    calls = []
    nested = module.nested_jvp
    monkeypatch.setattr(module, "nested_jvp", lambda *a: calls.append(len(a[2])) or nested(*a))
    _, reverse, forward = both(2)
    # One jvp-of-jvp-of-jvp along x, x, t yields all 8 derivatives of both outputs along subsets of (x, x, t).
    forward["u_xxt"]
    for key in ("u_x", "u_t", "u_xx", "u_xt", "v", "v_x", "v_t", "v_xx", "v_xt", "v_xxt"):
        assert_close(forward[key], reverse[key], msg=key)
    assert calls == [3]
    # The Laplacian reuses cached u_xx and computes only u_tt (and caches v_tt).
    calls.clear()
    forward.laplacian("u"), forward["v_tt"]
    assert calls == []


@pytest.mark.parametrize("key", ["u_xx", "v_xt", "u_xxt"])
def test_parameter_gradients_match_reverse_mode(key):
    net, reverse, forward = both(2)
    assert forward[key].requires_grad
    expected = parameter_gradients(net, reverse[key].square().mean())
    for got, want in zip(parameter_gradients(net, forward[key].square().mean()), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=key)


def test_laplacian_and_grad_carry_parameter_gradients():
    net, reverse, forward = both(7)
    expected = parameter_gradients(net, reverse.laplacian("u").square().mean() + reverse.grad("v").square().mean())
    got = parameter_gradients(net, forward.laplacian("u").square().mean() + forward.grad("v").square().mean())
    for g, w in zip(got, expected):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


def test_at_gives_fields_at_other_points_with_the_same_options():
    net, _, forward = both(2, chunk_size=1)
    y = torch.randn(5, 2, dtype=torch.float64)
    other = forward.at(y)
    assert isinstance(other, ForwardFields) and other.chunk_size == 1
    assert_close(other["u_xt"], Autograd().fields(net, y, ("x", "t"), ("u", "v"))["u_xt"])


@pytest.mark.parametrize("key", ["u_z", "w_x", "u_", "ux", "u_xz"])
def test_unknown_names_are_clear_errors(key):
    _, _, forward = both(2)
    with pytest.raises(KeyError, match="inputs are"):
        forward[key]


def test_unknown_names_in_grad_and_laplacian_are_clear_errors():
    _, _, forward = both(2)
    for method in (forward.grad, forward.laplacian):
        with pytest.raises(KeyError, match="outputs are"):
            method("w")
        with pytest.raises(KeyError, match="inputs are"):
            method("u", ["x", "z"])
    with pytest.raises(ValueError, match="order"):
        forward.derivatives_along("u", "t", -1)


def test_bad_options_and_shapes_raise_at_construction():
    with pytest.raises(ValueError, match="chunk_size"):
        Forward(chunk_size=0)
    net = MLP(hidden=[4], in_features=2, out_features=2).double()
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        Forward().fields(net, torch.randn(4, 3, dtype=torch.float64), ("x", "t"), ("u", "v"))
    with pytest.raises(ValueError, match="network must return"):
        Forward().fields(net, torch.randn(4, 2, dtype=torch.float64), ("x", "t"), ("u",))
    assert Forward(chunk_size=8).init_args == {"chunk_size": 8}


def test_pinn_training_step_with_forward_mode():
    from lightning_pde.modules import PINN
    from lightning_pde.problems import Poisson2D

    torch.manual_seed(0)
    modules = {name: PINN(problem=Poisson2D(), derivatives=engine)
               for name, engine in (("forward", Forward()), ("reverse", Autograd()))}
    modules["reverse"].load_state_dict(modules["forward"].state_dict())
    points = {name: cond.sample(64, torch.Generator().manual_seed(1), "uniform").float()
              for name, cond in modules["forward"].conditions.items()}
    gradients = {}
    for name, module in modules.items():
        sum(module.condition_losses(points).values()).backward()
        gradients[name] = [p.grad for p in module.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in gradients["forward"])
    for got, want in zip(gradients["forward"], gradients["reverse"]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
