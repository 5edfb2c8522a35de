"""The single-pass engine (value, Jacobian and Hessian diagonal in one forward propagation) must match reverse mode
on every problem's residuals and on parameter gradients, and must not call torch.autograd.grad for them."""

import pytest
import torch

from lightning_pde.derivatives import Autograd, SinglePass, SinglePassFields
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP, FourierFeatures, PeriodicEmbedding
from lightning_pde.problems import HJB, AllenCahn, Burgers, Heat, Helmholtz, KleinGordon, Poisson2D

PROBLEMS = {"poisson": Poisson2D, "burgers": Burgers, "klein_gordon": KleinGordon, "helmholtz": Helmholtz,
            "allen_cahn": AllenCahn, "heat": lambda: Heat(dim=4), "hjb": lambda: HJB(dim=3)}


def module(problem, embedding=None, activation="tanh", **options):
    torch.manual_seed(0)
    return PINN(problem, MLP([12, 12], activation=activation, embedding=embedding), **options).double()


def batch(pinn, n=12):
    generator = torch.Generator().manual_seed(3)
    return {key: cond.sample(n, generator, "uniform").double() for key, cond in pinn.conditions.items()}


def losses_and_gradients(pinn, engine, points):
    pinn.derivatives = engine
    pinn.zero_grad()
    losses = pinn.condition_losses(points)
    sum(losses.values()).backward()
    return losses, [p.grad.clone() for p in pinn.parameters()]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_losses_and_parameter_gradients_match_reverse_mode(name, fused, monkeypatch):
    pinn = module(PROBLEMS[name](), fused=fused)
    points = batch(pinn)
    want_losses, want_gradients = losses_and_gradients(pinn, Autograd(), points)
    calls = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or grad(*a, **k))
    losses, gradients = losses_and_gradients(pinn, SinglePass(), points)
    assert not calls, "single pass used reverse mode for a residual"
    for key in want_losses:
        torch.testing.assert_close(losses[key], want_losses[key], rtol=1e-10, atol=1e-12, msg=key)
    for got, want in zip(gradients, want_gradients):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("embedding", [PeriodicEmbedding(["x"], harmonics=2), FourierFeatures(8, scale=2.0)],
                         ids=["periodic", "fourier"])
def test_embeddings_propagate_the_hessian_diagonal(embedding):
    pinn = module(AllenCahn(), embedding=embedding, activation="sin")
    x = pinn.problem.domain.sample(10, torch.Generator().manual_seed(1)).double()
    names, outputs = pinn.problem.input_names, pinn.problem.output_names
    reverse, single = Autograd().fields(pinn, x, names, outputs), SinglePass().fields(pinn, x, names, outputs)
    for key in ("u", "u_x", "u_t", "u_xx", "u_tt"):
        torch.testing.assert_close(single[key], reverse[key], rtol=1e-10, atol=1e-12, msg=key)
    torch.testing.assert_close(single.laplacian("u"), reverse.laplacian("u"), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(single.grad("u"), reverse.grad("u"), rtol=1e-10, atol=1e-12)


def test_mixed_derivatives_fall_back_to_reverse_mode():
    pinn = module(Burgers())
    x = pinn.problem.domain.sample(6, torch.Generator().manual_seed(1)).double()
    names, outputs = pinn.problem.input_names, pinn.problem.output_names
    single = SinglePass().fields(pinn, x, names, outputs)
    assert isinstance(single, SinglePassFields) and not single.used_reverse
    reverse = Autograd().fields(pinn, x, names, outputs)
    for key in ("u_xt", "u_xxx"):
        torch.testing.assert_close(single[key], reverse[key], rtol=1e-10, atol=1e-12, msg=key)
    assert single.used_reverse


def test_networks_without_the_propagation_are_clear_errors():
    problem = Burgers()
    plain = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"SinglePass: the network \(Sequential\) has no forward_laplacian"):
        SinglePass().fields(plain, torch.zeros(3, 2), problem.input_names, problem.output_names)
    PINN(problem, MLP([4]), derivatives=SinglePass(), hard_constraints=True)  # composed since session 5


def test_compile_needs_the_single_pass_engine_and_no_mixed_derivatives():
    with pytest.raises(ValueError, match="compile=True needs the SinglePass derivative engine.*got Autograd"):
        PINN(Burgers(), MLP([4]), compile=True)

    class Mixed(Burgers):
        def conditions(self):
            conditions = super().conditions()
            pde = conditions["pde"]
            conditions["pde"] = type(pde)(pde.kind, pde.sample, lambda f: f["u_xt"], pde.n_points)
            return conditions

    with pytest.raises(ValueError, match="condition 'pde' of Mixed asks for a mixed or third-order derivative"):
        PINN(Mixed(), MLP([4]), derivatives=SinglePass(), compile=True)
    with pytest.raises(ValueError, match="PINN: compile must be true or false, got 'yes'"):
        PINN(Burgers(), MLP([4]), derivatives=SinglePass(), compile="yes")


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard_constraints"])
def test_compiled_loss_trains_like_the_eager_one(tmp_path, hard):
    """Same seed, same points: 20 Adam steps with the compiled loss end where the eager ones do (also through a
    hard-constraint transform, whose derivative terms run eagerly inside the compiled loss)."""
    import pytorch_lightning as pl

    from lightning_pde.data import CollocationDataModule

    finals = []
    for compiled in (False, True):
        pl.seed_everything(0)
        pinn = PINN(Poisson2D(n_pde=64, n_boundary=16), MLP([8, 8]), derivatives=SinglePass(), compile=compiled,
                    hard_constraints=hard)
        trainer = pl.Trainer(max_steps=20, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, inference_mode=False, accelerator="cpu",
                             limit_val_batches=0, default_root_dir=tmp_path)
        trainer.fit(pinn, datamodule=CollocationDataModule(steps_per_epoch=10))
        assert (pinn._compiled_losses is not None) == compiled
        finals.append(torch.cat([p.detach().flatten() for p in pinn.parameters()]))
    torch.testing.assert_close(finals[1], finals[0], rtol=1e-4, atol=1e-5)


def test_pinn_carries_only_the_second_derivatives_its_residuals_use():
    """Burgers asks for u_xx, not u_tt: the PINN narrows SinglePass to x (one direction less through every layer)
    and leaves the caller's engine object as it was; Heat's Laplacian is over x_1..x_d, not t."""
    engine = SinglePass()
    burgers = PINN(Burgers(), MLP([8]), derivatives=engine)
    assert burgers.derivatives.second == ["x"] and engine.second is None
    assert PINN(Heat(dim=3), MLP([8]), derivatives=SinglePass()).derivatives.second == ["x_1", "x_2", "x_3"]
    assert PINN(KleinGordon(), MLP([8]), derivatives=SinglePass()).derivatives.second == ["x", "t"]
    assert PINN(Burgers(), MLP([8]), derivatives=SinglePass(["x", "t"])).derivatives.second == ["x", "t"]
    fields = burgers.fields(burgers.problem.domain.sample(7, torch.Generator().manual_seed(0)))
    assert fields._diagonal.shape == (7, 1, 1)


@pytest.mark.parametrize("second", [[], ["x"], ["t"], ["t", "x"]])
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard_constraints"])
def test_a_narrowed_engine_still_gives_every_derivative(second, hard):
    """Derivatives left out of the propagation come from reverse mode: still exact."""
    pinn = module(Burgers(), hard_constraints=hard)
    x = pinn.problem.domain.sample(9, torch.Generator().manual_seed(2)).double()
    names, outputs = pinn.problem.input_names, pinn.problem.output_names
    reverse, single = Autograd().fields(pinn, x, names, outputs), SinglePass(second).fields(pinn, x, names, outputs)
    assert single._diagonal.shape == (9, len(second), 1)
    for key in ("u", "u_x", "u_t", "u_xx", "u_tt"):
        torch.testing.assert_close(single[key], reverse[key], rtol=1e-10, atol=1e-12, msg=key)
    torch.testing.assert_close(single.laplacian("u"), reverse.laplacian("u"), rtol=1e-10, atol=1e-12)
    assert single.used_reverse == (set(second) != {"x", "t"})


def test_unknown_second_derivative_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"SinglePass: second must be a list of names, got 'x'"):
        SinglePass("x")
    with pytest.raises(ValueError, match=r"names unknown input\(s\) \['y'\]; the inputs are \['x', 't'\]"):
        PINN(Burgers(), MLP([8]), derivatives=SinglePass(["y"]))
