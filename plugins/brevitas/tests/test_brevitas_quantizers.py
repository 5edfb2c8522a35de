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
