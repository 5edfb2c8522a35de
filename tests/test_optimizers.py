"""Second-order optimizers (lightning_pde.optimizers) against scipy.optimize on small convex and nonconvex problems,
the strong Wolfe conditions of the line search, dtypes, statistics, determinism, resume and bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from lightning_pde.optimizers import BFGS, SSBFGS, GaussNewton, SSBroyden, residual_jacobian, strong_wolfe
from lightning_pde.optimizers.line_search import cubic_minimizer

QUASI_NEWTON = (BFGS, SSBFGS, SSBroyden)


def minimize(cls, loss_fn, x0: np.ndarray, dtype=torch.float64, **kwargs):
    """Run `cls` on loss_fn(x) from x0 in one step call; returns (x, optimizer)."""
    x = torch.nn.Parameter(torch.tensor(x0, dtype=dtype))
    optimizer = cls([x], **kwargs)

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss

    optimizer.step(closure)
    return x.detach(), optimizer


def scipy_bfgs(loss_fn, x0: np.ndarray, gtol: float = 1e-10):
    def fun(v):
        x = torch.tensor(v, requires_grad=True)
        loss = loss_fn(x)
        loss.backward()
        return float(loss.detach()), x.grad.numpy().copy()

    return scipy.optimize.minimize(fun, x0, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 2000})


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def quadratic_problem(n: int = 12):
    """0.5 x^T A x - b^T x with A SPD of condition number 100, a seeded draw."""
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    a = q @ torch.diag(torch.logspace(0, 2, n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, generator=generator, dtype=torch.float64)
    return (lambda x: 0.5 * x @ a @ x - b @ x), torch.linalg.solve(a, b)


def logistic_problem():
    """Mean logistic loss of a linear classifier on 200 seeded points with overlapping classes, plus a small ridge
    term (strictly convex)."""
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(200, 4, generator=generator, dtype=torch.float64)
    labels = (features @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
              + torch.randn(200, generator=generator, dtype=torch.float64) > 0).double()

    def loss(w):
        logits = features @ w[:4] + w[4]
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels) + 1e-3 * w.square().sum()

    return loss


def tanh_net(params, x):
    """A 1-8-1 tanh network with its 25 parameters in one vector."""
    w1, b1, w2, b2 = params[:8], params[8:16], params[16:24], params[24]
    x = x.to(params.dtype)
    return torch.tanh(x[:, None] * w1 + b1) @ w2 + b2


def tanh_data():
    x = torch.linspace(-1, 1, 40, dtype=torch.float64)
    return x, torch.sin(3 * x)


def tanh_residual(params):
    x, y = tanh_data()
    return (tanh_net(params, x) - y.to(params.dtype)) / math.sqrt(len(x))


def tanh_loss(params):
    return tanh_residual(params).square().sum()


def tanh_start() -> np.ndarray:
    return torch.randn(25, generator=torch.Generator().manual_seed(3), dtype=torch.float64).numpy()


def tanh_closure(optimizer, params):
    """The closure each optimizer takes for the tanh regression: the residual vector for Gauss-Newton, the loss
    with its gradient for the others."""
    if isinstance(optimizer, GaussNewton):
        return lambda: tanh_residual(params)

    def closure():
        optimizer.zero_grad()
        loss = tanh_loss(params)
        loss.backward()
        return loss

    return closure


# -- the line search ---------------------------------------------------------------------------------------------------

def test_cubic_minimizer_is_exact_on_a_cubic():
    f = lambda t: t ** 3 - 3 * t ** 2 + 1
    df = lambda t: 3 * t ** 2 - 6 * t
    assert cubic_minimizer(0.5, f(0.5), df(0.5), 3.0, f(3.0), df(3.0), 0.5, 3.0) == pytest.approx(2.0, abs=1e-12)
    # clamped into the bounds it is given, and the midpoint when the data have no minimizer
    assert cubic_minimizer(0.5, f(0.5), df(0.5), 3.0, f(3.0), df(3.0), 2.5, 3.0) == 2.5
    assert cubic_minimizer(0.0, 0.0, 5.0, 1.0, 4.0, 5.0, 0.0, 1.0) == pytest.approx(0.5)  # cubic increasing


@pytest.mark.parametrize("t0", [1e-4, 1e-2, 1.0, 50.0])
def test_strong_wolfe_conditions_hold(t0):
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    loss0 = rosenbrock(x0)
    grad0, = torch.autograd.grad(loss0, x0)
    d = -grad0 / grad0.norm()
    dphi0 = float(grad0 @ d)
    calls = []

    def phi(t):
        x = (x0.detach() + t * d).requires_grad_(True)
        loss = rosenbrock(x)
        grad, = torch.autograd.grad(loss, x)
        calls.append(t)
        return float(loss.detach()), grad, float(grad @ d)

    c1, c2 = 1e-4, 0.9
    result = strong_wolfe(phi, t0, float(loss0.detach()), grad0, dphi0, c1, c2)
    assert result.wolfe and result.evaluations == len(calls)
    assert result.loss <= float(loss0.detach()) + c1 * result.t * dphi0
    assert abs(result.dphi) <= c2 * abs(dphi0)
    loss, grad, dphi = phi(result.t)  # what it reports is phi at the step it returns
    assert (loss, dphi) == (result.loss, result.dphi) and torch.equal(grad, result.grad)


# -- against scipy -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", QUASI_NEWTON)
def test_quadratic_same_minimum_as_scipy(cls):
    loss_fn, exact = quadratic_problem()
    x0 = np.zeros(len(exact))
    # a gradient tolerance the loss can still resolve: below it f changes at rounding level along any step
    x, optimizer = minimize(cls, loss_fn, x0, max_iter=200, tolerance_grad=1e-7, tolerance_change=0)
    reference = scipy_bfgs(loss_fn, x0)
    assert torch.allclose(x, exact, rtol=0, atol=1e-7)
    assert np.allclose(reference.x, exact.numpy(), atol=1e-6)
    # of the same order: on a quadratic with exact line searches BFGS ends in n steps; scipy took `nit`
    assert optimizer.stats["iterations"] <= 2 * reference.nit + 5, (optimizer.stats, reference.nit)
    # stopped by the gradient tolerance, or where the loss no longer resolves a decrease (rounding)
    assert optimizer.stats["stop_reason"] in ("tolerance_grad", "line_search")


@pytest.mark.parametrize("cls", QUASI_NEWTON)
def test_logistic_regression_same_minimum_as_scipy(cls):
    loss_fn = logistic_problem()
    x0 = np.zeros(5)
    x, optimizer = minimize(cls, loss_fn, x0, max_iter=200, tolerance_grad=1e-10, tolerance_change=0)
    reference = scipy_bfgs(loss_fn, x0)
    assert np.allclose(x.numpy(), reference.x, atol=1e-6)
    assert optimizer.stats["iterations"] <= 2 * reference.nit + 5, (optimizer.stats, reference.nit)


@pytest.mark.parametrize("cls", QUASI_NEWTON)
def test_rosenbrock_same_minimum_as_scipy(cls):
    x0 = np.array([-1.2, 1.0])
    x, optimizer = minimize(cls, rosenbrock, x0, max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-15)
    reference = scipy_bfgs(rosenbrock, x0)
    assert np.allclose(reference.x, [1, 1], atol=1e-6)
    assert torch.allclose(x, torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-6)
    stats = optimizer.stats
    assert reference.nit / 3 <= stats["iterations"] <= 3 * reference.nit, (stats, reference.nit)
    assert stats["function_evaluations"] <= 3 * reference.nfev


@pytest.mark.parametrize("cls", QUASI_NEWTON)
def test_tanh_network_regression_reaches_scipy_loss(cls):
    """Nonconvex: a 25-parameter tanh network fitting sin(3x). From the same start both reach a loss far below the
    start's, within an order of magnitude of each other, with a tiny gradient."""
    x0 = tanh_start()
    x, optimizer = minimize(cls, tanh_loss, x0, max_iter=3000, tolerance_grad=1e-9, tolerance_change=0)
    reference = scipy_bfgs(tanh_loss, x0, gtol=1e-9)
    ours, theirs = float(tanh_loss(x)), reference.fun
    assert ours < 1e-4 and theirs < 1e-4, (ours, theirs)
    assert ours <= 10 * theirs + 1e-9, (ours, theirs)
    assert optimizer.stats["iterations"] <= 3 * reference.nit, (optimizer.stats, reference.nit)


def test_gauss_newton_linear_least_squares_in_one_iteration():
    generator = torch.Generator().manual_seed(2)
    m = torch.randn(30, 6, generator=generator, dtype=torch.float64)
    c = torch.randn(30, generator=generator, dtype=torch.float64)
    exact = torch.linalg.lstsq(m, c).solution
    x = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    optimizer = GaussNewton([x], max_iter=5, damping=1e-12)
    optimizer.step(lambda: m @ x - c)
    assert torch.allclose(x.detach(), exact, rtol=0, atol=1e-9)
    reference = scipy_bfgs(lambda v: (m @ v - c).square().sum(), np.zeros(6))
    assert np.allclose(reference.x, exact.numpy(), atol=1e-6)
    assert optimizer.stats["iterations"] <= 2  # Gauss-Newton is exact on a linear residual


def test_gauss_newton_rosenbrock_and_tanh_network():
    x = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))
    optimizer = GaussNewton([x], max_iter=100, tolerance_change=0)
    optimizer.step(lambda: torch.stack([1 - x[0], 10 * (x[1] - x[0] ** 2)]))  # rosenbrock = |r|^2
    assert torch.allclose(x.detach(), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-8)
    assert optimizer.stats["iterations"] <= scipy_bfgs(rosenbrock, np.array([-1.2, 1.0])).nit

    x0 = tanh_start()
    params = torch.nn.Parameter(torch.tensor(x0))
    optimizer = GaussNewton([params], max_iter=300, tolerance_change=0)
    optimizer.step(lambda: tanh_residual(params))
    reference = scipy_bfgs(tanh_loss, x0, gtol=1e-9)
    ours = float(tanh_loss(params.detach()))
    assert ours < 1e-4 and ours <= 10 * reference.fun + 1e-9, (ours, reference.fun)
    assert optimizer.stats["iterations"] <= reference.nit


def test_residual_jacobian_matches_row_by_row_through_second_derivatives():
    """The batched reverse-mode Jacobian through a residual built with create_graph (as PINN residuals are)."""
    net = torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()
    x = torch.linspace(0, 1, 9, dtype=torch.float64)[:, None].requires_grad_(True)
    u = net(x)
    u_x, = torch.autograd.grad(u.sum(), x, create_graph=True)
    u_xx, = torch.autograd.grad(u_x.sum(), x, create_graph=True)
    r = (u_xx + u).reshape(-1)
    params = list(net.parameters())
    jac = residual_jacobian(r, params, chunk=4)
    rows = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(ri, params, retain_graph=True)])
                        for ri in r])
    assert jac.shape == (9, sum(p.numel() for p in params))
    assert torch.allclose(jac, rows, rtol=1e-12, atol=1e-12)


# -- dtypes, statistics, determinism, resume ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", (*QUASI_NEWTON, GaussNewton))
def test_works_in_the_parameters_dtype(cls):
    for dtype in (torch.float32, torch.float64):
        params = torch.nn.Parameter(torch.tensor(tanh_start(), dtype=dtype))
        optimizer = cls([params], max_iter=30)
        optimizer.step(tanh_closure(optimizer, params))
        assert params.dtype == dtype
        for value in optimizer.state[params].values():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                assert value.dtype == dtype
        assert optimizer.stats["loss"] < float(tanh_loss(torch.tensor(tanh_start())))


@pytest.mark.parametrize("cls", (*QUASI_NEWTON, GaussNewton))
def test_stats_are_reported(cls):
    params = torch.nn.Parameter(torch.tensor(tanh_start()))
    optimizer = cls([params], max_iter=7, max_eval=100)
    evaluations = []
    inner = tanh_closure(optimizer, params)

    def closure():
        evaluations.append(1)
        return inner()

    start_loss = float(optimizer.step(closure).detach())
    first = optimizer.stats
    assert start_loss == pytest.approx(float(tanh_loss(torch.tensor(tanh_start()))), rel=1e-12)
    optimizer.step(closure)
    stats = optimizer.stats
    assert first["step_iterations"] == 7 and stats["step_iterations"] == 7 and stats["iterations"] == 14
    assert stats["function_evaluations"] == len(evaluations)
    assert stats["function_evaluations"] == first["step_function_evaluations"] + stats["step_function_evaluations"]
    assert stats["time_s"] >= stats["step_time_s"] > 0
    assert stats["stop_reason"] == "max_iter" and stats["loss"] < first["loss"] < start_loss
    # torch.optim.LBFGS's keys, which the L-BFGS callbacks read to count iterations
    assert optimizer.state[params]["n_iter"] == 14 and optimizer.state[params]["func_evals"] == len(evaluations)


def run_tanh(cls, steps: int, state_dict=None, **kwargs):
    params = torch.nn.Parameter(torch.tensor(tanh_start()))
    optimizer = cls([params], max_iter=10, **kwargs)
    if state_dict is not None:
        params.data.copy_(state_dict["params"])
        optimizer.load_state_dict(state_dict["optimizer"])
    closure = tanh_closure(optimizer, params)
    for _ in range(steps):
        optimizer.step(closure)
    return params.detach().clone(), optimizer


@pytest.mark.parametrize("cls", (*QUASI_NEWTON, GaussNewton))
def test_deterministic_and_bitwise_resumable(cls):
    a, _ = run_tanh(cls, 3)
    b, _ = run_tanh(cls, 3)
    assert torch.equal(a, b)
    # two steps, a state_dict round trip through torch.save, a fresh optimizer, one more step: the same as three
    half, optimizer = run_tanh(cls, 2)
    import io
    buffer = io.BytesIO()
    torch.save({"params": half, "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    resumed, _ = run_tanh(cls, 1, state_dict=torch.load(buffer))
    assert torch.equal(resumed, a)


def test_history_size_restarts_the_approximation():
    loss_fn, exact = quadratic_problem()
    x, optimizer = minimize(BFGS, loss_fn, np.zeros(len(exact)), max_iter=300, history_size=3,
                            tolerance_grad=1e-7, tolerance_change=0)
    assert torch.allclose(x, exact, rtol=0, atol=1e-7)
    assert optimizer.state[next(iter(optimizer.state))]["updates"] <= 3
    _, full = minimize(BFGS, loss_fn, np.zeros(len(exact)), max_iter=300, tolerance_grad=1e-7, tolerance_change=0)
    assert optimizer.stats["iterations"] > full.stats["iterations"]  # restarts forget curvature


def test_without_line_search_fixed_steps():
    loss_fn, exact = quadratic_problem()
    x, optimizer = minimize(SSBroyden, loss_fn, np.zeros(len(exact)), max_iter=500, line_search_fn=None, lr=0.5,
                            tolerance_grad=1e-9, tolerance_change=0)
    assert torch.allclose(x, exact, rtol=0, atol=1e-6)
    assert optimizer.stats["function_evaluations"] == optimizer.stats["iterations"] + 1


def test_loss_is_reduced_across_ranks_when_asked():
    """`reduce` (DDP's mean over ranks) is applied to the loss the line search compares: a reduce that scales the
    loss by 2 scales every reported loss by 2 and leaves the gradient-driven iterates unchanged in a convex case."""
    loss_fn, exact = quadratic_problem()
    _, plain = minimize(BFGS, loss_fn, np.ones(len(exact)), max_iter=3)
    _, scaled = minimize(BFGS, lambda x: loss_fn(x), np.ones(len(exact)), max_iter=3, reduce=lambda t: t * 2)
    assert scaled.stats["loss"] == pytest.approx(2 * plain.stats["loss"], rel=1e-12)


# -- bad settings ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", QUASI_NEWTON)
@pytest.mark.parametrize("kwargs, message", [
    ({"history_size": -1}, "history_size must be an integer >= 1, got -1"),
    ({"history_size": 0}, "history_size must be an integer >= 1, got 0"),
    ({"line_search_fn": "armijo"}, "line_search_fn must be one of"),
    ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
    ({"lr": -1.0}, "lr must be a finite number > 0"),
    ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),
    ({"max_eval": -3}, "max_eval must be an integer >= 1"),
    ({"tolerance_grad": -1e-9}, "tolerance_grad must be a finite number >= 0"),
    ({"tolerance_change": float("nan")}, "tolerance_change must be a finite number >= 0"),
    ({"c1": 0.9, "c2": 0.1}, "0 < c1 < c2 < 1"),
])
def test_bad_quasi_newton_settings(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"{cls.__name__}: .*{message}".replace("(", r"\(").replace(")", r"\)")):
        cls([torch.nn.Parameter(torch.zeros(3))], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"damping": 0.0}, "damping must be a finite number > 0, got 0.0"),
    ({"damping": -1.0}, "damping must be a finite number > 0"),
    ({"lr": 0.0}, "lr must be a finite number > 0"),
    ({"lr": 2.0}, r"lr must be a number in \(0, 1\]"),
    ({"max_iter": -1}, "max_iter must be an integer >= 1"),
    ({"jacobian_chunk": 0}, "jacobian_chunk must be an integer >= 1"),
])
def test_bad_gauss_newton_settings(kwargs, message):
    with pytest.raises(ValueError, match=f"GaussNewton: {message}"):
        GaussNewton([torch.nn.Parameter(torch.zeros(3))], **kwargs)


def test_bad_use_is_a_clear_error():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="BFGS: takes one parameter group"):
        BFGS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="SSBroyden: step needs a closure"):
        SSBroyden([a]).step(None)
    with pytest.raises(ValueError, match="GaussNewton: the closure must return the residual vector"):
        GaussNewton([a]).step(lambda: 1.0)
    with pytest.raises(ValueError, match=r"got a 0-dim tensor \(a loss\?\)"):
        GaussNewton([a]).step(lambda: a.square().sum())
    with pytest.raises(ValueError, match="BFGS: 40000 parameters need a dense 40000x40000"):
        BFGS([torch.nn.Parameter(torch.zeros(40000))])


# -- a PINN's residual vector ------------------------------------------------------------------------------------------

def tiny_pinn(engine):
    from lightning_pde.modules.pinn import PINN
    from lightning_pde.nn import MLP
    from lightning_pde.problems import Poisson2D

    torch.manual_seed(0)
    pinn = PINN(Poisson2D(), net=MLP(hidden=[8, 8], activation="tanh"), derivatives=engine,
                loss_weights={"boundary": 3.0}).double()
    generator = torch.Generator().manual_seed(0)
    points = {name: cond.sample(40 if name == "pde" else 16, generator, "uniform").double()
              for name, cond in pinn.conditions.items()}
    return pinn, points


@pytest.mark.parametrize("engine", ["Forward", "Autograd"])
def test_pinn_residuals_sum_of_squares_is_the_loss_and_jacobian_is_exact(engine):
    from lightning_pde import derivatives
    from lightning_pde.optimizers import PINNResiduals

    pinn, points = tiny_pinn(getattr(derivatives, engine)())
    residuals = PINNResiduals(pinn, points)
    loss = sum(pinn.loss_weights[k] * v for k, v in pinn.condition_losses(points).items())
    r = residuals()
    assert r.shape == (56,) and float(r.detach().square().sum()) == pytest.approx(float(loss.detach()), rel=1e-12)
    params = list(pinn.parameters())
    r2, jac = residuals.jacobian(params)
    # point by point where the engine composes with torch.func; Autograd's torch.autograd.grad does not
    assert residuals.pointwise is (engine == "Forward")
    assert torch.allclose(r2, r.detach(), rtol=0, atol=1e-13)
    assert torch.allclose(jac, residual_jacobian(r, params), rtol=1e-10, atol=1e-12)


def test_gauss_newton_trains_a_tiny_pinn():
    from lightning_pde.derivatives import Forward
    from lightning_pde.optimizers import PINNResiduals

    pinn, points = tiny_pinn(Forward())
    residuals = PINNResiduals(pinn, points)
    optimizer = GaussNewton(list(pinn.parameters()), max_iter=15, max_eval=60)
    start = float(optimizer.step(residuals))
    assert optimizer.stats["loss"] < 1e-3 * start, (start, optimizer.stats)
    assert optimizer.stats["function_evaluations"] >= optimizer.stats["iterations"] + 1


@pytest.mark.parametrize("cls", QUASI_NEWTON)
def test_drop_in_for_lightning_training(cls, tmp_path):
    """Lightning's automatic optimization drives them as it drives torch.optim.LBFGS: its closure runs the training
    step, zeroes the gradients and calls backward; the loss falls and the iterations are counted."""
    import pytorch_lightning as pl

    from lightning_pde.data import CollocationDataModule
    from lightning_pde.modules import PINN
    from lightning_pde.nn import MLP
    from lightning_pde.problems import Poisson2D

    torch.manual_seed(0)
    pinn = PINN(Poisson2D(n_pde=64, n_boundary=32), net=MLP(hidden=[8], activation="tanh"),
                optimizer=lambda params: cls(params, max_iter=10))
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(inference_mode=False, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path, limit_val_batches=0, max_steps=3,
                         accelerator="cpu", devices=1, callbacks=[Record()])
    trainer.fit(pinn, datamodule=CollocationDataModule(steps_per_epoch=3))
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, cls) and optimizer.stats["iterations"] == 30
    assert losses[-1] < 0.5 * losses[0], losses


def test_levenberg_marquardt_step_is_batched():
    """The damped solve takes a batch of systems (as the GPT-PINN online solver has), each scaled by its own
    diagonal: the same steps one by one and together."""
    from lightning_pde.optimizers import levenberg_marquardt_step

    generator = torch.Generator().manual_seed(4)
    jac = torch.randn(3, 10, 4, generator=generator, dtype=torch.float64) * torch.tensor([1.0, 1e3, 1e-3])[:, None, None]
    r = torch.randn(3, 10, generator=generator, dtype=torch.float64)
    jtj, jtr = jac.transpose(1, 2) @ jac, (jac.transpose(1, 2) @ r[..., None])[..., 0]
    damping = torch.tensor([1e-3, 1.0, 1e-6], dtype=torch.float64)
    together = levenberg_marquardt_step(jtj, jtr, damping)
    for i in range(3):
        alone = levenberg_marquardt_step(jtj[i], jtr[i], float(damping[i]))
        assert torch.allclose(together[i], alone, rtol=1e-12, atol=0)
        expected = torch.linalg.solve(jtj[i] + damping[i] * torch.diag(torch.diagonal(jtj[i])), -jtr[i])
        assert torch.allclose(alone, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("cls", (*QUASI_NEWTON, GaussNewton))
def test_max_eval_follows_max_iter_unless_given(cls):
    """A driver sets param_groups[0]["max_iter"] before each step (the second-order phase does): the default
    evaluation budget follows it, a given one stays."""
    params = torch.nn.Parameter(torch.tensor(tanh_start()))
    optimizer = cls([params], max_iter=5)
    optimizer.param_groups[0]["max_iter"] = 50
    optimizer.step(tanh_closure(optimizer, params))
    assert optimizer.stats["step_iterations"] == 50
    assert optimizer.param_groups[0]["max_eval"] == (100 if cls is not GaussNewton else 160)
    fixed = cls([params], max_iter=5, max_eval=7)
    fixed.param_groups[0]["max_iter"] = 50
    fixed.step(tanh_closure(fixed, params))
    assert fixed.stats["function_evaluations"] <= 7 + 25 and fixed.param_groups[0]["max_eval"] == 7
