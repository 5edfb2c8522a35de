"""SMX fake quantization (docs/design.md, arXiv 2512.09202): bit for bit against a slow reference, transpose
consistency, the SMX training autograd functions, and SMX networks under every derivative engine."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_pde.quant import SMXLinear, smx_linear, smx_quantize, smx_quantize_reference
from lightning_pde.quant.smx import smx_scale


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 11), cols=st.integers(1, 11), bits=st.integers(2, 12), block=st.integers(1, 5),
       seed=st.integers(0, 2**16), magnitude=st.sampled_from([1e-6, 1e-2, 1.0, 300.0]))
def test_smx_matches_reference_bit_for_bit(rows, cols, bits, block, seed, magnitude):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=g) * magnitude
    x[0, 0] = 0.0
    assert torch.equal(smx_quantize(x, bits, block), smx_quantize_reference(x, bits, block))


def test_ties_round_half_to_even_and_zero_tiles():
    # tile max 1.0 -> scale 2^(0 - 6) at INT8; 2.5 and 3.5 steps round to 2 and 4
    x = torch.tensor([[1.0, 2.5 / 64, 3.5 / 64, 0.0]] + [[0.0] * 4] * 3)
    q = smx_quantize(x)
    assert q[0, 1].item() == 2 / 64 and q[0, 2].item() == 4 / 64
    assert torch.equal(smx_quantize(torch.zeros(4, 4)), torch.zeros(4, 4))


def test_transpose_consistent_idempotent_and_accurate():
    x = torch.randn(37, 53)
    q = smx_quantize(x)
    assert torch.equal(smx_quantize(x.T), q.T)
    assert torch.equal(smx_quantize(q), q)
    codes = q / smx_scale(x)
    assert torch.equal(codes, codes.round()) and codes.abs().max() <= 127
    assert (q - x).norm() / x.norm() < 0.01  # INT8 4x4 SMX on Gaussian data: ~0.7 %
    assert (smx_quantize(x, 12) - x).norm() / x.norm() < 1e-3


@pytest.mark.parametrize("kwargs, message", [({"bits": 1}, "bits"), ({"block": 0}, "block"),
                                             ({"bits": 2.5}, "bits")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        smx_quantize(torch.ones(2, 2), **kwargs)
    with pytest.raises(ValueError, match=message):
        SMXLinear(2, 2, **kwargs)


def test_smx_linear_uses_one_quantized_copy_forward_and_backward():
    torch.manual_seed(0)
    x = torch.randn(10, 12, requires_grad=True)
    w = torch.randn(6, 12, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    y = smx_linear(x, w, b, 8, 12, 4)
    g = torch.randn(10, 6)
    y.backward(g)
    xq, wq, gq = smx_quantize(x.detach()), smx_quantize(w.detach()), smx_quantize(g, 12)
    assert torch.equal(y, xq @ wq.T + b)
    assert torch.equal(x.grad, gq @ wq)
    # dW = Q12(dY)^T Q8(X): the transposed operands are the quantized copies themselves
    assert torch.equal(w.grad, gq.T @ xq)
    assert torch.equal(smx_quantize(xq.T), xq.T)
    assert torch.allclose(b.grad, g.sum(0))


def test_smx_linear_trains_a_regression():
    torch.manual_seed(0)
    layer = SMXLinear(8, 1)
    x = torch.randn(256, 8)
    target = x @ torch.arange(1.0, 9.0)[:, None] / 8
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = (layer(x) - target).square().mean()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3


def test_convert_layers_quantizes_a_built_network_and_full_precision_undoes_it_inside_the_block():
    from lightning_pde.nn import MLP, TTMLP
    from lightning_pde.quant import SMXQuantizer, convert_layers, full_precision

    torch.manual_seed(0)
    x = torch.rand(64, 16) * 2 - 1
    for net in (MLP([32, 32], in_features=16, out_features=1),
                TTMLP([16, 16], tt_shapes=[[[4, 4], [4, 4]], [[4, 4], [4, 4]], None], rank=2)):
        if not net.layers:
            net.build(16, 1)
        reference = net(x).detach()
        params = [id(p) for p in net.parameters()]
        assert convert_layers(net, SMXQuantizer()) == 3
        assert [id(p) for p in net.parameters()] == params  # same Parameter objects: optimizers stay valid
        quantized = net(x).detach()
        assert not torch.equal(quantized, reference)
        assert (quantized - reference).norm() / reference.norm() < 0.1
        with full_precision(net):
            assert torch.equal(net(x).detach(), reference)
        assert torch.equal(net(x).detach(), quantized)  # switched back on after the block
    assert convert_layers(torch.nn.Tanh(), SMXQuantizer()) == 0


def _quantized_pinn(engine, tt: bool):
    from lightning_pde.modules import PINN
    from lightning_pde.nn import MLP, TTMLP
    from lightning_pde.problems import Poisson2D
    from lightning_pde.quant import SMXQuantizer

    torch.manual_seed(0)
    net = (TTMLP([16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None], rank=2, quantizer=SMXQuantizer()) if tt
           else MLP([32, 32], quantizer=SMXQuantizer()))
    return PINN(Poisson2D(), net, derivatives=engine, fused=False)


def _laplacian_and_its_gradient(model, x):
    model.zero_grad()
    torch.manual_seed(1)  # the same Stein perturbations for the quantized and the float evaluation
    fields = model.fields(x)
    laplacian, gradient = fields.laplacian("u"), fields.grad("u")
    (laplacian.square().mean() + gradient.square().mean()).backward()
    grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])
    return laplacian.detach(), gradient.detach(), grads


@pytest.mark.parametrize("tt", [False, True], ids=["mlp", "ttmlp"])
@pytest.mark.parametrize("engine", ["Autograd", "Forward", "ForwardLaplacian", "SinglePass", "Stein"])
def test_every_engine_differentiates_an_smx_network_like_the_float_one(engine, tt):
    # SMX used to give a zero Laplacian under Autograd (the quantized gradient's rounding has derivative zero), fail
    # under Forward (no torch.func support) and be bypassed by ForwardLaplacian / SinglePass (float weights)
    from lightning_pde import derivatives
    from lightning_pde.quant import full_precision

    kwargs = {"samples": 256, "sigma": 0.1, "diffquant": True} if engine == "Stein" else {}
    model = _quantized_pinn(getattr(derivatives, engine)(**kwargs), tt)
    x = torch.rand(64, 2)
    quantized = _laplacian_and_its_gradient(model, x)
    with full_precision(model):
        exact = _laplacian_and_its_gradient(model, x)
    for what, q, f in zip(("Laplacian", "gradient", "parameter gradient"), quantized, exact):
        error = ((q - f).norm() / f.norm()).item()
        assert 0 < error < 0.05, (what, error)  # quantized (not bypassed), and within INT8 SMX error


def test_stein_without_diffquant_is_refused_on_a_quantized_network_at_construction():
    from lightning_pde.derivatives import Stein

    with pytest.raises(ValueError, match="diffquant=True"):
        _quantized_pinn(Stein(samples=8), tt=True)
