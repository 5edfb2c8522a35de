"""Stein derivative engine: unbiased for the Gaussian-smoothed function, usable by every problem, DiffQuant removes
the underflow of quantized perturbations."""

import math

import pytest
import torch

from lightning_pde.derivatives import Autograd, Stein
from lightning_pde.derivatives.stein import SteinFields
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import HJB, Heat, Poisson2D
from lightning_pde.quant import SMXQuantizer, diffquant_differences, naive_differences


class Wave(torch.nn.Module):
    """f(x) = sin(w . x): the smoothed u_sigma = exp(-sigma^2 |w|^2 / 2) sin(w . x) is known in closed form."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return torch.sin(x @ self.w)[:, None]


def test_unbiased_for_the_smoothed_function():
    torch.manual_seed(0)
    w = torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64)
    sigma = 0.4  # large, so the smoothing factor is far from 1 and the test tells u_sigma from f
    x = torch.rand(4, 3, dtype=torch.float64)
    fields = Stein(samples=200_000, sigma=sigma).fields(Wave(w), x, ("a", "b", "c"), ("u",))
    damp = math.exp(-sigma**2 * w.square().sum().item() / 2)
    phase = x @ w
    grad = damp * torch.cos(phase)[:, None] * w
    lap = -damp * w.square().sum() * torch.sin(phase)
    assert torch.allclose(fields.grad("u"), grad, atol=0.02)
    assert torch.allclose(fields.laplacian("u"), lap, atol=0.05)
    assert torch.allclose(fields["u_ab"], -damp * w[0] * w[1] * torch.sin(phase), atol=0.05)
    assert torch.allclose(fields["u_cc"], -damp * w[2] ** 2 * torch.sin(phase), atol=0.02)
    assert not torch.allclose(fields.laplacian("u"), lap / damp, atol=0.05)  # not the unsmoothed Laplacian


def test_time_sigma_and_errors():
    x = torch.rand(3, 2, dtype=torch.float64)
    quadratic = lambda p: (p[:, :1] ** 2 + 3 * p[:, 1:] ** 2)  # noqa: E731  exact for any sigma
    f = Stein(samples=50_000, sigma=0.3, time_sigma=0.05).fields(quadratic, x, ("x", "t"), ("u",))
    assert torch.allclose(f["u_x"], 2 * x[:, 0], atol=0.02) and torch.allclose(f["u_t"], 6 * x[:, 1], atol=0.05)
    assert torch.allclose(f["u_xx"], torch.full((3,), 2.0, dtype=torch.float64), atol=0.05)
    with pytest.raises(NotImplementedError, match="order 3"):
        f["u_xxx"]
    for kwargs, name in [({"samples": 0}, "samples"), ({"sigma": -1.0}, "sigma"), ({"time_inputs": "t"}, "time")]:
        with pytest.raises(ValueError, match=name):
            Stein(**kwargs)


@pytest.mark.parametrize("problem", [Poisson2D(), HJB(dim=5), Heat(dim=10)])
def test_serves_every_problem_and_reaches_the_parameters(problem):
    torch.manual_seed(0)
    pinn = PINN(problem, MLP([16, 16]), derivatives=Stein(samples=64), fused=False)
    losses = pinn.losses({name: c.sample(20, torch.Generator().manual_seed(1), "uniform")
                          for name, c in pinn.conditions.items()})
    sum(losses.values()).backward()
    first = pinn.net.layers[0].weight.grad
    assert first is not None and first.abs().sum() > 0


def test_close_to_autograd_on_a_network():
    torch.manual_seed(0)
    pinn = PINN(Poisson2D(), MLP([32, 32]), derivatives=Stein(samples=4096, sigma=0.01))
    x = torch.rand(16, 2)
    stein = pinn.fields(x)
    pinn.derivatives = Autograd()
    exact = pinn.fields(x)
    assert (stein.grad("u") - exact.grad("u")).norm() / exact.grad("u").norm() < 0.05
    assert (stein.laplacian("u") - exact.laplacian("u")).norm() / exact.laplacian("u").norm() < 0.2


def test_diffquant_removes_the_underflow():
    torch.manual_seed(1)
    fp = MLP([64, 64, 64], in_features=2, out_features=1)
    quantized = MLP([64, 64, 64], quantizer=SMXQuantizer(), in_features=2, out_features=1)
    quantized.load_state_dict(fp.state_dict())
    x, delta = torch.rand(8, 2), torch.randn(8, 256, 2) * 0.01
    with torch.no_grad():
        _, (exact, _) = naive_differences(fp, x, [delta, -delta])
        _, (naive, _) = naive_differences(quantized, x, [delta, -delta])
        _, (diff, _) = diffquant_differences(quantized, x, [delta, -delta])
        _, (diff_fp, _) = diffquant_differences(fp, x, [delta, -delta])
    error = lambda a: ((a - exact).norm() / exact.norm()).item()  # noqa: E731
    assert error(diff_fp) < 1e-3  # the difference path is the same function in full precision
    assert error(naive) > 0.5  # INT8 x + delta: delta rounded away, differences are quantization noise
    assert error(diff) < 0.1  # DiffQuant: delta keeps its own block scale


def test_diffquant_engine_needs_a_pinn_without_hard_constraints():
    f = SteinFields(MLP([8], in_features=2, out_features=1), torch.rand(3, 2), ("x1", "x2"), ("u",),
                    Stein(samples=4, diffquant=True))
    with pytest.raises(ValueError, match="PINN"):
        f.laplacian("u")
    with pytest.raises(ValueError, match="hard-constraint"):
        PINN(Poisson2D(), MLP([8]), derivatives=Stein(samples=4, diffquant=True), hard_constraints=True)


def test_debias_makes_the_squared_residual_loss_unbiased():
    # f = x_1^2 + x_2^2: its Laplacian is 4 for any sigma, so a PDE "Laplacian u = 3" has residual 1 everywhere
    # and the exact loss is 1. The plain loss mean(r_hat^2) adds the estimator's variance; the debiased
    # mean(r_hat_1 r_hat_2) over independent halves does not.
    torch.manual_seed(0)
    d, n = 2, 200_000
    x = torch.rand(n, d, dtype=torch.float64)
    square = lambda p: p.square().sum(dim=1, keepdim=True)  # noqa: E731
    names = tuple(f"x_{i}" for i in range(d))
    plain = Stein(samples=8, sigma=0.1).fields(square, x, names, ("u",))
    residual = plain.laplacian("u") - 3
    first, second = Stein(samples=8, sigma=0.1, debias=True).fields(square, x, names, ("u",)).halves()
    debiased = ((first.laplacian("u") - 3) * (second.laplacian("u") - 3)).mean()
    assert residual.square().mean() > 3.0  # the estimator's variance on top of the true 1
    assert abs(debiased.item() - 1.0) < 0.1


def test_debias_in_a_pinn_and_its_errors():
    torch.manual_seed(0)
    model = PINN(Poisson2D(n_pde=32, n_boundary=16), MLP([16]), derivatives=Stein(samples=8, debias=True),
                 fused=False)
    points = {k: c.sample(32, torch.Generator().manual_seed(0), "uniform") for k, c in model.conditions.items()}
    losses = model.condition_losses(points)
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    # boundary values are not estimated: both halves see the same f(x), so the product is the plain square
    f = model.fields(points["boundary"])
    assert torch.allclose(losses["boundary"], model.conditions["boundary"].residual(f).square().mean())
    with pytest.raises(ValueError, match="samples >= 4"):
        Stein(samples=3, debias=True)
    with pytest.raises(ValueError, match="fused=False"):
        PINN(Poisson2D(), MLP([8]), derivatives=Stein(samples=4, debias=True), fused=True)
    model.reductions["pde"] = lambda residual, x: residual.square().mean()
    with pytest.raises(ValueError, match="CausalWeighting"):
        model.condition_losses(points)


def _quadratic_hjb(dim: int, n: int, samples: int):
    """Stein fields of a quadratic u on HJB(dim)'s inputs (x_1..x_dim, t), the exact smoothed derivatives (a
    Gaussian smoothing only adds a constant to a quadratic) and HJB's pde residual."""
    from lightning_pde.problems import HJB

    problem = HJB(dim=dim)
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(dim, generator=g, dtype=torch.float64) * 4, torch.randn(dim, generator=g, dtype=torch.float64)

    def u(p):
        x, t = p[:, :dim], p[:, dim:]
        return 0.5 * (a * x.square()).sum(dim=1, keepdim=True) + x @ b[:, None] - 1.5 * t

    x = torch.rand(n, dim + 1, generator=g, dtype=torch.float64)
    fields = Stein(samples=samples, sigma=0.1, debias=True).fields(u, x, problem.input_names, ("u",))
    grad = a * x[:, :dim] + b
    exact = -1.5 + a.sum() - 0.05 * grad.square().sum(dim=1) - problem.source
    return fields, problem.conditions()["pde"].residual, exact


def test_debias_is_unbiased_for_hjbs_squared_gradient():
    # HJB's residual has 0.05 |grad u|^2: its plug-in estimate from a half of the pairs is biased by 0.05 times the
    # gradient estimate's variance, so the product of the two halves' residuals (the debiased loss of linear
    # residuals) is biased too; squared_residual corrects each half with its quarters
    torch.manual_seed(0)
    fields, residual, exact = _quadratic_hjb(dim=4, n=200_000, samples=8)
    target = exact.square().mean().item()
    first, second = fields.halves()
    halves = (residual(first) * residual(second)).mean().item()
    unbiased = fields.squared_residual(residual).mean().item()
    assert abs(halves - target) > 0.15 * target  # what the halves product gets wrong (19 % here)
    assert abs(unbiased - target) < 0.03 * target


def test_debias_keeps_the_halves_product_for_linear_residuals_and_refuses_higher_degrees():
    torch.manual_seed(0)
    fields, _, _ = _quadratic_hjb(dim=3, n=64, samples=8)
    laplacian = lambda f: f.laplacian("u", inputs=("x_1", "x_2", "x_3")) - f.d("u", "t")  # noqa: E731
    first, second = fields.halves()
    assert torch.allclose(fields.squared_residual(laplacian), laplacian(first) * laplacian(second))
    cubic = lambda f: f.grad("u", inputs=("x_1", "x_2", "x_3")).pow(3).sum(dim=1)  # noqa: E731
    with pytest.raises(ValueError, match="not at most quadratic"):
        fields.squared_residual(cubic)
    small = Stein(samples=4).fields(lambda p: p.sum(dim=1, keepdim=True), torch.rand(4, 2), ("x", "y"), ("u",))
    with pytest.raises(ValueError, match="samples >= 4"):
        small._evaluated = (lambda e: (e[0], e[1][:, :3], e[2], e[3][:, :3], e[4][:, :3]))(small.evaluate())
        small.squared_residual(laplacian)


def test_a_debiased_hjb_pinn_trains_on_the_unbiased_loss():
    # needs PINN.condition_losses to take the debiased loss from SteinFields.squared_residual
    from lightning_pde.problems import HJB

    torch.manual_seed(0)
    model = PINN(HJB(dim=4, n_pde=16, n_terminal=8, n_boundary=8), MLP([16]),
                 derivatives=Stein(samples=8, debias=True), fused=False)
    points = {k: c.sample(16, torch.Generator().manual_seed(0), "uniform") for k, c in model.conditions.items()}
    torch.manual_seed(3)
    losses = model.condition_losses(points)
    torch.manual_seed(3)
    fields = model.fields(points["pde"])
    assert torch.allclose(losses["pde"], fields.squared_residual(model.conditions["pde"].residual).mean())
