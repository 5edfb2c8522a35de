import copy

import pytest
import torch
from brevitas.nn import QuantLinear

from lightning_pde import registry
from lightning_pde.nn import MLP, TTMLP
from lightning_pde.quant import smx_quantize
from lpde_brevitas import BrevitasQuantizer, SMXTensorQuant


def test_registered_and_validated():
    assert registry.get("quantizers", "BrevitasQuantizer") is BrevitasQuantizer
    with pytest.raises(ValueError, match="recipe"):
        BrevitasQuantizer("int3")


def test_smx_tensor_quant_is_smx_quantize():
    x = torch.randn(12, 20)
    q, scale, zero, bits = SMXTensorQuant()(x)
    assert torch.equal(q, smx_quantize(x)) and bits.item() == 8


@pytest.mark.parametrize("recipe", ["int8_per_tensor", "int8_per_channel", "smx"])
def test_recipes_quantize_an_mlp_close_to_full_precision(recipe):
    torch.manual_seed(0)
    fp = MLP([32, 32], in_features=2, out_features=1)
    net = copy.deepcopy(fp)
    quantizer = BrevitasQuantizer(recipe)
    for i, layer in enumerate(net.layers):
        net.layers[i] = quantizer.convert(layer)
    assert all(isinstance(layer, QuantLinear) for layer in net.layers)
    net.eval()
    x = torch.rand(64, 2)
    error = ((net(x) - fp(x)).norm() / fp(x).norm()).item()
    assert 0 < error < 0.05


def test_quantized_tt_network_from_config_option_trains():
    net = TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None], quantizer=BrevitasQuantizer("smx"),
                in_features=2, out_features=1)
    net(torch.rand(8, 2)).sum().backward()
    assert net.layers[1].weight_quant is not None
    assert all(p.grad is not None for p in net.layers[1].cores)


def test_converted_layers_share_the_parameters_and_carry_second_derivatives():
    from lightning_pde.derivatives import Forward
    from lightning_pde.modules import PINN
    from lightning_pde.problems import Poisson2D
    from lightning_pde.quant import convert_layers

    torch.manual_seed(0)
    fp = MLP([32, 32], in_features=2, out_features=1)
    net = copy.deepcopy(fp)
    before = [id(p) for p in net.parameters()]
    convert_layers(net, BrevitasQuantizer("smx"))
    assert [id(p) for p in net.parameters()] == before  # an optimizer made before the conversion still trains them
    x = torch.rand(32, 2)
    laplacian = PINN(Poisson2D(), net, fused=False).fields(x).laplacian("u")
    exact = PINN(Poisson2D(), fp, fused=False).fields(x).laplacian("u")
    assert ((laplacian - exact).norm() / exact.norm()).item() < 0.05
    with pytest.raises(ValueError, match="Forward engine"):  # torch.func cannot see through brevitas: said at once
        PINN(Poisson2D(), net, derivatives=Forward(), fused=False)


@pytest.mark.parametrize("recipe", ["int8_per_tensor", "int8_per_channel", "smx"])
def test_an_optimizer_made_before_the_conversion_trains_the_converted_layers(recipe):
    from lightning_pde.quant import convert_layers

    torch.manual_seed(0)
    net = MLP([16, 16], in_features=2, out_features=1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    assert convert_layers(net, BrevitasQuantizer(recipe)) == 3
    x = torch.rand(64, 2)
    target = torch.sin(x.sum(dim=1, keepdim=True))
    before = [layer.weight.detach().clone() for layer in net.layers]
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = (net(x) - target).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(not torch.equal(layer.weight, old) for layer, old in zip(net.layers, before))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("recipe", ["int8_per_tensor", "int8_per_channel", "smx"])
def test_tt_weight_factors_get_weight_quantizers_whose_scale_follows_the_weights(recipe):
    from brevitas.nn import QuantIdentity

    from lpde_brevitas import FactorWeightQuant

    torch.manual_seed(0)
    net = TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None], groups=[1, 1],
                quantizer=BrevitasQuantizer(recipe), in_features=2, out_features=1)
    layer = net.layers[1]
    assert isinstance(layer.weight_quant, FactorWeightQuant) and isinstance(layer.input_quant, QuantIdentity)
    net.eval()  # an activation quantizer would use its (uncalibrated) learned scale here and clip
    for growth in (3.0, 300.0):  # weights that grow during training are not clipped at a scale fixed earlier
        with torch.no_grad():
            for core in layer.cores:
                core.mul_(growth)
        quantized = layer.factors()
        layer.weight_quant.quant_enabled = False
        exact = layer.factors()
        layer.weight_quant.quant_enabled = True
        for q, f in zip(quantized, exact):
            assert 0 < ((q - f).norm() / f.norm()).item() < 0.03


def test_a_converted_tt_network_reloads_its_state_into_a_fresh_network():
    torch.manual_seed(0)

    def build():
        return TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None],
                     quantizer=BrevitasQuantizer("int8_per_channel"), in_features=2, out_features=1)

    net = build()
    keys = set(net.state_dict())
    net(torch.rand(8, 2)).sum().backward()
    # the factor quantizers add nothing (brevitas' activation quantizers add their learned scale after the first
    # training pass, which brevitas itself reloads)
    assert not any("weight_quant" in key for key in set(net.state_dict()) - keys)
    fresh = build()
    fresh.load_state_dict(net.state_dict())  # strict: a checkpoint reloads into a fresh network
    net.eval(), fresh.eval()
    x = torch.rand(8, 2)
    assert torch.equal(fresh(x), net(x))


def test_full_precision_switches_brevitas_layers_off_and_back():
    from lightning_pde.quant import full_precision

    torch.manual_seed(0)
    fp = TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None], in_features=2, out_features=1)
    net = copy.deepcopy(fp)
    from lightning_pde.quant import convert_layers

    convert_layers(net, BrevitasQuantizer("int8_per_channel"))
    net.train()
    x = torch.rand(32, 2)
    net(x)  # brevitas' activation quantizers collect their statistics in training mode
    net.eval()
    quantized = net(x)
    with full_precision(net):
        assert torch.allclose(net(x), fp(x), atol=1e-6)
    assert torch.equal(net(x), quantized) and not torch.allclose(quantized, fp(x), atol=1e-6)
