"""TTLinear: contraction equals the dense product for every PRS grouping, TT-SVD round trip, compression,
quantization error by grouping, and bad input."""

import pytest
import torch

from lightning_pde.nn import MLP, TTLinear, TTMLP
from lightning_pde.quant import SMXFakeQuant, SMXQuantizer

HJB_SHAPES = [[[1, 1, 3, 7], [8, 4, 4, 4]], [[4, 4, 4, 8], [8, 4, 4, 4]], None]


@pytest.mark.parametrize("groups", [[1, 1, 1, 1], [2, 2], [1, 3], [4]])
def test_contraction_equals_dense(groups):
    torch.manual_seed(0)
    layer = TTLinear([4, 4, 4, 8], [8, 4, 4, 4], rank=3, groups=groups)
    x = torch.randn(2, 5, 512, dtype=torch.float64)
    layer = layer.double()
    assert torch.allclose(layer(x), x @ layer.weight.T + layer.bias, atol=1e-10)


def test_from_dense_full_rank_reconstructs_and_ratio():
    w = torch.randn(24, 30, dtype=torch.float64)
    layer = TTLinear.from_dense(w, [5, 6], [4, 6], rank=100)
    assert torch.allclose(layer.weight, w, atol=1e-8)
    small = TTLinear([5, 6], [4, 6], rank=2)
    assert small.compression_ratio == pytest.approx((24 * 30 + 24) / (1 * 4 * 5 * 2 + 2 * 6 * 6 + 24))


def test_hjb_network_compressed_more_than_100x():
    net = TTMLP(hidden=[512, 512], tt_shapes=HJB_SHAPES, rank=2, in_features=21, out_features=1)
    assert sum(p.numel() for p in net.parameters()) == 1929
    assert net.compression_ratio() > 100  # 274 433 / 1 929 = 142x
    dense = MLP([512, 512], in_features=21, out_features=1)
    assert sum(p.numel() for p in dense.parameters()) == 274433


def test_partial_reconstruction_reduces_quantization_error():
    torch.manual_seed(0)
    layer = TTLinear([4, 4, 4, 8], [8, 4, 4, 4], rank=4)
    x = torch.randn(256, 512)
    exact = layer(x).detach()
    errors = {}
    for groups in ([1, 1, 1, 1], [2, 2], [4]):
        layer.groups = groups
        layer.set_quantizers(SMXFakeQuant(8, None), SMXFakeQuant(8, None))
        errors[str(groups)] = ((layer(x).detach() - exact).norm() / exact.norm()).item()
        layer.set_quantizers(None, None)
    # every extra re-quantized intermediate adds error: core by core > two groups > full reconstruction
    assert errors["[1, 1, 1, 1]"] > errors["[2, 2]"] > errors["[4]"]


def test_quantized_tt_network_trains_backward():
    net = TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None], quantizer=SMXQuantizer(),
                in_features=2, out_features=1)
    net(torch.rand(8, 2)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.layers[1].cores)


@pytest.mark.parametrize("kwargs, message", [
    ({"in_shape": [4, 4], "out_shape": [4]}, "same"),
    ({"in_shape": [4, 0], "out_shape": [4, 4]}, "in_shape"),
    ({"in_shape": [4, 4], "out_shape": [4, 4], "rank": 0}, "rank"),
    ({"in_shape": [4, 4], "out_shape": [4, 4], "rank": [1, 2]}, "rank"),
    ({"in_shape": [4, 4], "out_shape": [4, 4], "groups": [1]}, "groups"),
])
def test_bad_layer_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TTLinear(**kwargs)


def test_factorisation_must_match_layer_size():
    with pytest.raises(ValueError, match="tt_shapes\\[0\\].*products 20"):
        TTMLP(hidden=[16], tt_shapes=[[[4, 5], [4, 4]], None], in_features=21, out_features=1)
    with pytest.raises(ValueError, match="rank"):
        TTMLP(hidden=[16], rank=0)
