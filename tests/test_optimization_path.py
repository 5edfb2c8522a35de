"""The one optimization path (Adam, then a second-order phase) that PINN training, time-marching windows and GPT-PINN
neurons share: exact resume after the switch, any optimizer through a factory, the plain loop against a hand-written
one, and clear errors for bad settings."""

import functools

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from lightning_pde.callbacks import AdamThenLBFGS
from lightning_pde.callbacks.lbfgs import (DistributedLBFGS, OptimizationPath, ReducedLoss, SecondOrder,
                                           with_reduced_loss)
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Poisson2D


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def run(tmp_path, float64, ckpt_path=None, stop_at=None):
    """Adam for 10 steps, then L-BFGS (4 iterations a step) to a budget of 40; points redrawn every epoch of 5."""
    pl.seed_everything(0)
    module = PINN(Poisson2D(n_pde=96, n_boundary=32), MLP([10, 10]), optimizer=lambda p: torch.optim.Adam(p, lr=5e-3))
    lbfgs = AdamThenLBFGS(switch_step=10, lbfgs_iterations=40, iterations_per_step=4, float64=float64,
                          tolerance_grad=0.0, tolerance_change=0.0)
    callbacks = [lbfgs]
    if stop_at:
        callbacks += [ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=stop_at,
                                      save_on_train_epoch_end=False), StopAt(stop_at)]
    trainer = pl.Trainer(max_steps=-1, inference_mode=False, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, callbacks=callbacks,
                         accelerator="cpu", devices=1, enable_checkpointing=bool(stop_at), limit_val_batches=0)
    trainer.fit(module, datamodule=CollocationDataModule(steps_per_epoch=5, resample_every=1, seed=3),
                ckpt_path=ckpt_path)
    return module, trainer, lbfgs


@pytest.mark.parametrize("float64", [False, True])
def test_resume_after_the_switch_equals_an_uninterrupted_run_bit_for_bit(tmp_path, float64):
    """A checkpoint inside the L-BFGS phase (step 17: 7 L-BFGS steps in) resumes with the optimizer's curvature
    history, its iteration count and, with float64, the float64 weights themselves (not rounded through float32)."""
    straight, trainer, lbfgs = run(tmp_path / "a", float64)
    assert trainer.global_step == 20 and lbfgs.iterations == 40
    _, interrupted, cut = run(tmp_path / "b", float64, stop_at=17)
    assert interrupted.global_step == 17 and cut.switched and 0 < cut.iterations < 40
    resumed, trainer, again = run(tmp_path / "c", float64, ckpt_path=tmp_path / "b" / "ckpt" / "last.ckpt")
    assert trainer.global_step == 20 and again.iterations == 40
    assert again.path.metrics()["evaluations"] == lbfgs.path.metrics()["evaluations"]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert a.dtype == b.dtype == (torch.float64 if float64 else torch.float32), name
        assert torch.equal(a, b), name


class GradientStep(torch.optim.Optimizer):
    """A plain gradient step per closure call: an optimizer with no notion of iterations (no max_iter, no n_iter)."""

    def __init__(self, params, lr=1e-2):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])
        return loss


def test_any_optimizer_plugs_in_through_the_factory(tmp_path):
    """AdamThenLBFGS(optimizer=...) trains with the factory's optimizer, which becomes a ReducedLoss (DDP loss
    averaging, counts) of its own class; one without iterations counts one per step."""
    pl.seed_everything(0)
    module = PINN(Poisson2D(n_pde=64, n_boundary=16), MLP([8]))
    lbfgs = AdamThenLBFGS(switch_step=3, lbfgs_iterations=4, iterations_per_step=1,
                          optimizer=functools.partial(GradientStep, lr=1e-3))
    trainer = pl.Trainer(max_steps=-1, inference_mode=False, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
                         callbacks=[lbfgs], accelerator="cpu", devices=1, limit_val_batches=0)
    trainer.fit(module, datamodule=CollocationDataModule(steps_per_epoch=4))
    optimizer = trainer.optimizers[0]
    assert type(optimizer).__name__ == "DistributedGradientStep"
    assert isinstance(optimizer, GradientStep) and isinstance(optimizer, ReducedLoss)
    assert trainer.global_step == 3 + 4 and lbfgs.iterations == 4
    assert trainer.callback_metrics["lbfgs/evaluations"] == 4
    # torch's own L-BFGS through a factory is the DistributedLBFGS class
    factory = functools.partial(torch.optim.LBFGS, history_size=3)
    assert type(with_reduced_loss(factory([torch.zeros(2, requires_grad=True)]), None)) is DistributedLBFGS


def test_the_closure_loss_is_reduced_for_any_optimizer():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    optimizer = with_reduced_loss(GradientStep([x]), reduce=lambda t: t * 0 + 7.0)

    def closure():
        optimizer.zero_grad()
        loss = (x ** 2).sum()
        loss.backward()
        return loss

    assert float(optimizer.step(closure)) == 7.0 and optimizer.evaluations == 1


def rosenbrock(z):
    return (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2


def test_plain_loop_matches_a_hand_written_adam_then_lbfgs_bit_for_bit():
    """OptimizationPath.run (the GPT-PINN neurons' loop) is Adam with its schedule, then L-BFGS stepped
    `iterations_per_step` at a time until the budget or convergence: the same numbers as writing it out. On Rosenbrock
    the strong-Wolfe search often needs more than max_eval = 8 evaluations for a step of 7 iterations; such a step has
    not converged (the old rule stopped there, at loss 4.07)."""
    second = SecondOrder(iterations=200, iterations_per_step=7, tolerance_grad=1e-10, tolerance_change=1e-14)
    z = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    path = OptimizationPath(25, second)
    loss = path.run([z], lambda: rosenbrock(z), lambda p: torch.optim.Adam(p, lr=0.01),
                    lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 25, 0.0005))

    w = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([w], lr=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(adam, 25, 0.0005)
    for _ in range(25):
        adam.zero_grad()
        rosenbrock(w).backward()
        adam.step()
        schedule.step()
    lbfgs = torch.optim.LBFGS([w], lr=1.0, max_iter=7, history_size=50, tolerance_grad=1e-10, tolerance_change=1e-14,
                              line_search_fn="strong_wolfe")

    def closure():
        lbfgs.zero_grad()
        value = rosenbrock(w)
        value.backward()
        return value

    done = steps = 0
    while True:
        before, evals = lbfgs.state[w].get("n_iter", 0), lbfgs.state[w].get("func_evals", 0)
        lbfgs.step(closure)
        step = lbfgs.state[w]["n_iter"] - before
        done += step
        group = lbfgs.param_groups[0]
        # converged: fewer iterations than asked for, and not because the step ran out of evaluations
        steps += 1
        if done >= 200 or (step < group["max_iter"] and lbfgs.state[w]["func_evals"] - evals < group["max_eval"]) \
                or steps >= 29:  # ceil(200 / 7) steps at most
            break
        lbfgs.param_groups[0]["max_iter"] = min(7, 200 - done)
    assert torch.equal(z, w) and path.iterations == done and path.phase == "done"
    assert done < 200 and loss < 1e-12  # converged (Rosenbrock's minimum (1, 1)) before the budget
    torch.testing.assert_close(z.detach(), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-6)


def test_bad_second_order_settings_are_clear_errors():
    cases = [(dict(history_size=-1), "AdamThenLBFGS: history_size must be an integer >= 1, got -1"),
             (dict(iterations_per_step=0), "AdamThenLBFGS: iterations_per_step must be an integer >= 1, got 0"),
             (dict(tolerance_grad=-1e-9), "AdamThenLBFGS: tolerance_grad must be a finite number >= 0"),
             (dict(lr=0.0), "AdamThenLBFGS: lr must be a finite number > 0, got 0.0"),
             (dict(optimizer="SSBFGS"), "AdamThenLBFGS: optimizer must be an optimizer factory"),
             (dict(float64="yes"), "AdamThenLBFGS: float64 must be true or false")]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            AdamThenLBFGS(**kwargs)
    with pytest.raises(ValueError, match="GPTPINN: neuron.second_order.iterations must be an integer >= 0, got -5"):
        SecondOrder(iterations=-5).checked("GPTPINN", "neuron.second_order.")
