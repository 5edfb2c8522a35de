"""The forward-Laplacian engine must match reverse mode (the reference) on PINNs, parameter gradients included."""

import pytest
import torch
from torch import nn

from lightning_pde.derivatives import Autograd, ForwardLaplacian, ForwardLaplacianFields, SinglePass
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP, Embedding, FourierFeatures, PeriodicEmbedding
from lightning_pde.problems import HJB, AllenCahn, Burgers, Heat, Helmholtz, KleinGordon, Poisson2D

PROBLEMS = {"heat": lambda: Heat(dim=7), "hjb": lambda: HJB(dim=5), "poisson": Poisson2D}


def module(problem, activation="tanh", embedding=None, seed=0, **options):
    torch.manual_seed(seed)
    return PINN(problem, MLP([16, 16], activation=activation, embedding=embedding), **options).double()


def points(problem, n=20, seed=1):
    return problem.domain.sample(n, torch.Generator().manual_seed(seed)).double()


def both(pinn, x):
    names, outputs = pinn.problem.input_names, pinn.problem.output_names
    return Autograd().fields(pinn, x, names, outputs), ForwardLaplacian().fields(pinn, x, names, outputs)


def spatial(problem):
    """Heat and HJB take the Laplacian over x only; for Poisson2D take x1 alone."""
    return list(getattr(problem, "space_names", problem.input_names[:1]))


def assert_close(actual, expected, msg="", tol=1e-8):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, msg=msg)


def parameter_gradients(net, loss):
    net.zero_grad()
    loss.backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


def count_propagations(monkeypatch, net):
    """The subsets `net.forward_laplacian` is called for, in order."""
    calls = []
    propagate = net.forward_laplacian
    monkeypatch.setattr(net, "forward_laplacian", lambda x, laplacian_inputs: calls.append(laplacian_inputs)
                        or propagate(x, laplacian_inputs=laplacian_inputs))
    return calls


@pytest.mark.parametrize("activation", ["tanh", "sin", "cos"])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_fields_match_reverse_mode(name, activation, monkeypatch):
    problem = PROBLEMS[name]()
    pinn = module(problem, activation)
    calls = count_propagations(monkeypatch, pinn)
    x = points(problem)
    first = problem.input_names[0]
    space, time = spatial(problem), problem.input_names[-1]
    # Asked before any Laplacian: first derivatives by reverse mode, no propagation yet.
    reverse, forward = both(pinn, x)
    assert_close(forward.u, reverse.u)
    assert_close(forward.grad("u", space), reverse.grad("u", space), msg="grad before propagation")
    assert calls == []
    assert_close(forward.laplacian("u", space), reverse.laplacian("u", space), msg="laplacian over a subset")
    assert_close(forward.laplacian("u"), reverse.laplacian("u"), msg="laplacian over all inputs")
    assert len(calls) == 2
    # Asked after a Laplacian: every first derivative from the propagated Jacobian.
    reverse, forward = both(pinn, x)
    assert_close(forward.laplacian("u"), reverse.laplacian("u"))
    assert_close(forward.grad("u"), reverse.grad("u"), msg="grad from the Jacobian")
    for key in ["u", *(f"u_{i}" for i in problem.input_names), first]:
        assert_close(forward[key], reverse[key], msg=key)
    assert_close(forward.grad("u", [time, first]), reverse.grad("u", [time, first]))
    # Through the reverse-mode fallback: a mixed and a third derivative, and u_xx (no propagation over {x} alone).
    for key in (f"u_{first}{time}", f"u_{time}{first}{first}", f"u_{first}{first}"):
        assert_close(forward[key], reverse[key], msg=key)
    assert len(calls) == 3


def test_single_input_laplacian_serves_the_pure_second_derivative(monkeypatch):
    problem = Poisson2D()
    reverse, forward = both(module(problem), points(problem))
    assert_close(forward.laplacian("u", ["x2"]), reverse["u_x2x2"])
    grads = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: grads.append(1) or grad(*a, **k))
    assert torch.equal(forward["u_x2x2"], forward.laplacian("u", ["x2"])) and grads == []


def test_heat_residual_needs_one_propagation_and_one_reverse_pass(monkeypatch):
    problem = Heat(dim=7)
    pinn = module(problem)
    calls = count_propagations(monkeypatch, pinn)
    grads = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: grads.append(1) or grad(*a, **k))
    f = ForwardLaplacian().fields(pinn, points(problem), problem.input_names, problem.output_names)
    f.d("u", "t") - f.laplacian("u", problem.space_names)
    assert calls == [list(range(7))] and len(grads) == 1


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_parameter_gradients_match_reverse_mode(name):
    problem = PROBLEMS[name]()
    pinn = module(problem, "sin")
    space = spatial(problem)

    def loss(f):
        return (f.laplacian("u").square().mean() + f.laplacian("u", space).square().mean()
                + f.grad("u", space).square().mean() + f[f"u_{problem.input_names[-1]}"].square().mean())

    reverse, forward = both(pinn, points(problem))
    assert forward.laplacian("u").requires_grad
    expected = parameter_gradients(pinn, loss(reverse))
    for got, want in zip(parameter_gradients(pinn, loss(forward)), expected):
        assert_close(got, want, tol=1e-10)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_condition_losses_match_reverse_mode(name, fused):
    problem = PROBLEMS[name]()
    pinn = module(problem, fused=fused)
    batch = {key: cond.sample(16, torch.Generator().manual_seed(2), "uniform").double()
             for key, cond in pinn.conditions.items()}
    results = {}
    for engine in (Autograd(), ForwardLaplacian()):
        pinn.derivatives = engine
        losses = pinn.condition_losses(batch)
        results[type(engine).__name__] = losses, parameter_gradients(pinn, sum(losses.values()))
    (losses, gradients), (want_losses, want_gradients) = results["ForwardLaplacian"], results["Autograd"]
    assert losses.keys() == want_losses.keys()
    for key in losses:
        assert_close(losses[key], want_losses[key], msg=key, tol=1e-10)
    for got, want in zip(gradients, want_gradients):
        assert_close(got, want, tol=1e-10)


@pytest.mark.parametrize("problem, embedding", [
    (AllenCahn(), PeriodicEmbedding(["x"], harmonics=2)),
    (Heat(dim=3), FourierFeatures(n_features=5, scale=0.7)),
    (Poisson2D(), FourierFeatures(n_features=4, keep_inputs=False)),
])
def test_embeddings_propagate(problem, embedding):
    pinn = module(problem, "tanh", embedding)
    reverse, forward = both(pinn, points(problem))
    subset = list(problem.input_names[:-1])
    assert_close(forward.laplacian("u"), reverse.laplacian("u"))
    assert_close(forward.laplacian("u", subset), reverse.laplacian("u", subset))
    assert_close(forward.grad("u"), reverse.grad("u"))
    expected = parameter_gradients(pinn, reverse.laplacian("u", subset).square().mean())
    for got, want in zip(parameter_gradients(pinn, forward.laplacian("u", subset).square().mean()), expected):
        assert_close(got, want, tol=1e-10)


def test_bare_mlp_with_several_outputs_needs_one_propagation_per_subset(monkeypatch):
    torch.manual_seed(0)
    net = MLP([8, 8], activation="cos", in_features=3, out_features=2).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    names, outputs = ("x", "y", "t"), ("u", "v")
    calls = count_propagations(monkeypatch, net)
    reverse = Autograd().fields(net, x, names, outputs)
    forward = ForwardLaplacian().fields(net, x, names, outputs)
    for output in outputs:
        assert_close(forward.laplacian(output, ["x", "y"]), reverse.laplacian(output, ["x", "y"]))
        assert_close(forward.grad(output), reverse.grad(output))
    assert calls == [[0, 1]]
    # A repeated input counts twice, as in Fields.laplacian.
    assert_close(forward.laplacian("u", ["x", "x"]), 2 * reverse["u_xx"])
    other = forward.at(x[:4])
    assert isinstance(other, ForwardLaplacianFields)
    assert_close(other.laplacian("v"), Autograd().fields(net, x[:4], names, outputs).laplacian("v"))


def test_mlp_forward_laplacian_checks_the_subset():
    net = MLP([4], in_features=2, out_features=1)
    with pytest.raises(ValueError, match="distinct indices"):
        net.forward_laplacian(torch.randn(3, 2), laplacian_inputs=[0, 2])


def test_clear_errors():
    problem = Poisson2D()
    x = points(problem)
    sequential = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    with pytest.raises(ValueError, match=r"\(Sequential\) has no forward_laplacian.*Autograd"):
        ForwardLaplacian().fields(sequential, x, problem.input_names, problem.output_names)
    # A PINN around a network without the method: fields are made, the first propagation names the network.
    torch.manual_seed(0)
    pinn = PINN(problem, sequential).double()
    f = ForwardLaplacian().fields(pinn, x, problem.input_names, problem.output_names)
    with pytest.raises(ValueError, match=r"\(Sequential\) has no forward_laplacian.*Autograd"):
        f.laplacian("u")
    # A hard-constraint transform that is not affine in the network output cannot be composed.
    class SquaredOutput(Poisson2D):
        def hard_constraint(self, x, n):
            return n**2

    pinn = module(SquaredOutput(), hard_constraints=True)
    f = ForwardLaplacian().fields(pinn, x, problem.input_names, problem.output_names)
    with pytest.raises(NotImplementedError, match="SquaredOutput's hard-constraint transform is not affine.*Autograd"):
        f.laplacian("u")

    class Squares(Embedding):
        def build(self, input_names, periods):
            return len(input_names)

        def forward(self, x):
            return x.square()

    pinn = module(problem, embedding=Squares())
    f = ForwardLaplacian().fields(pinn, x, problem.input_names, problem.output_names)
    with pytest.raises(NotImplementedError, match="Squares has no forward_laplacian"):
        f.laplacian("u")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        ForwardLaplacian().fields(module(problem), x[:, :1], problem.input_names, problem.output_names)
    with pytest.raises(ValueError, match="network must return"):
        ForwardLaplacian().fields(module(problem), x, problem.input_names, ("u", "v"))
    with pytest.raises(KeyError, match="inputs are"):
        ForwardLaplacian().fields(module(problem), x, problem.input_names, ("u",)).laplacian("u", ["z"])
    assert ForwardLaplacian().init_args == {}


@pytest.mark.parametrize("problem", [Burgers(), Poisson2D(), KleinGordon(),
                                     KleinGordon(alpha=-2, beta=1, gamma=0, corner_singularity=True),
                                     Helmholtz(), Heat(dim=3)],
                         ids=lambda p: p.name + ("_corner_singularity" if getattr(p, "corner_singularity", False)
                                                 else ""))
@pytest.mark.parametrize("engine", [ForwardLaplacian(), SinglePass()], ids=lambda e: type(e).__name__)
def test_hard_constraint_transforms_compose_with_the_forward_propagation(problem, engine):
    """u = g(x) + d(x) n: value, every first and pure second derivative and the spatial Laplacian equal reverse mode
    through the transform (float64)."""
    torch.manual_seed(0)
    pinn = PINN(problem, MLP([8, 8]), hard_constraints=True).double()
    x = problem.domain.sample(7, torch.Generator().manual_seed(1)).double()
    names, outputs = problem.input_names, problem.output_names
    f, ref = engine.fields(pinn, x, names, outputs), Autograd().fields(pinn, x, names, outputs)
    for key in ["u", *(f"u_{n}" for n in names), *(f"u_{n}{n}" for n in names)]:
        torch.testing.assert_close(f[key], ref[key], rtol=1e-10, atol=1e-12, msg=key)
    space = [n for n in names if n != "t"]
    torch.testing.assert_close(f.laplacian("u", inputs=space), ref.laplacian("u", inputs=space), rtol=1e-10,
                               atol=1e-12)


def test_hard_constraint_terms_are_reused_for_the_same_points_only(monkeypatch):
    """The transform's g, d terms are computed once per point set: a second pass on equal points (a new tensor, as
    each closure call makes) reuses them, new points recompute them, and the results equal a fresh computation."""
    torch.manual_seed(0)
    problem = Burgers()
    pinn = PINN(problem, MLP([8, 8]), hard_constraints=True).double()
    calls = []
    compute = pinn._transform_terms_at
    monkeypatch.setattr(pinn, "_transform_terms_at", lambda *args: calls.append(1) or compute(*args))
    x = problem.domain.sample(7, torch.Generator().manual_seed(1)).double()
    first = pinn.forward_laplacian(x, [0], diagonal=True)
    again = pinn.forward_laplacian(x.clone(), [0], diagonal=True)
    assert len(calls) == 1
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    y = x.clone()
    y[0, 0] += 0.1
    moved = pinn.forward_laplacian(y, [0], diagonal=True)
    pinn.forward_laplacian(y, [0, 1], diagonal=True)  # other inputs: other terms
    assert len(calls) == 3
    fresh = PINN(problem, MLP([8, 8]), hard_constraints=True).double()
    fresh.load_state_dict(pinn.state_dict())
    for a, b in zip(moved, fresh.forward_laplacian(y, [0], diagonal=True)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
