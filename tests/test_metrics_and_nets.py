import pytest
import torch

from lightning_pde.metrics import PDEResidual, RelativeL2Error
from lightning_pde.nn import MLP


def test_relative_l2_is_independent_of_batching():
    pred, target = torch.randn(1000, 1), torch.randn(1000, 1)
    whole = RelativeL2Error()
    whole.update(pred, target)
    batched = RelativeL2Error()
    for p, t in zip(pred.split(77), target.split(77)):
        batched.update(p, t)
    expected = torch.linalg.norm(pred.double() - target.double()) / torch.linalg.norm(target.double())
    torch.testing.assert_close(whole.compute(), expected)
    torch.testing.assert_close(batched.compute(), expected)
    with pytest.raises(ValueError, match="differ in shape"):
        whole.update(pred, target[:10])


def test_residual_metric_is_mean_absolute_value():
    metric = PDEResidual()
    metric.update(torch.tensor([1.0, -3.0]))
    metric.update(torch.tensor([[2.0], [-2.0]]))
    assert float(metric.compute()) == 2.0


@pytest.mark.parametrize("activation", ["tanh", "sin", "cos"])
def test_mlp_shapes_and_xavier_init(activation):
    torch.manual_seed(0)
    net = MLP([256, 256], activation, in_features=3, out_features=2)
    assert net(torch.randn(5, 3)).shape == (5, 2)
    w = net.layers[1].weight.detach()
    # Xavier normal: std = sqrt(2 / (fan_in + fan_out)) = 1/16 here
    assert abs(float(w.std()) - 1 / 16) < 0.005
    assert all(float(layer.bias.abs().max()) == 0 for layer in net.layers)


def test_mlp_build_checks():
    net = MLP([8])
    with pytest.raises(RuntimeError, match="build"):
        net(torch.randn(2, 2))
    net.build(2, 1)
    net.build(2, 1)  # idempotent
    with pytest.raises(ValueError, match="built for 2 inputs"):
        net.build(3, 1)
    with pytest.raises(ValueError, match="activation"):
        MLP([8], "relu6")
    with pytest.raises(ValueError, match="hidden"):
        MLP([])
    with pytest.raises(ValueError, match="both"):
        MLP([8], in_features=2)
