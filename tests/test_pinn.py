import pytest
import pytorch_lightning as pl
import torch

import lightning_pde
from lightning_pde.callbacks import AdamThenLBFGS
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Burgers, Poisson2D


def trainer(tmp_path, max_steps, callbacks=(), **kwargs):
    return pl.Trainer(max_steps=max_steps, inference_mode=False, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=tmp_path, callbacks=list(callbacks),
                      accelerator="cpu", devices=1, **kwargs)


def tiny_poisson(**kwargs):
    return PINN(Poisson2D(n_pde=256, n_boundary=64), MLP([16, 16]),
                optimizer=lambda p: torch.optim.Adam(p, lr=1e-2), **kwargs)


def test_tiny_pinn_converges_in_seconds(tmp_path):
    pl.seed_everything(0)
    module = tiny_poisson()
    lbfgs = AdamThenLBFGS(switch_step=200, lbfgs_iterations=300, iterations_per_step=100)
    t = trainer(tmp_path, max_steps=-1, callbacks=[lbfgs], enable_checkpointing=False)
    data = CollocationDataModule(steps_per_epoch=50)
    t.fit(module, datamodule=data)
    (scores,) = t.test(module, datamodule=data, verbose=False)
    assert scores["test/rel_l2"] < 2e-3, scores
    assert scores["test/residual"] < 1e-2, scores


def test_lbfgs_budget_is_honoured_exactly_and_switches_to_float64(tmp_path):
    pl.seed_everything(0)
    module = PINN(Burgers(n_pde=128, n_initial=32, n_boundary=32), MLP([8]))
    lbfgs = AdamThenLBFGS(switch_step=5, lbfgs_iterations=45, iterations_per_step=20, float64=True,
                          tolerance_grad=0, tolerance_change=0)
    data = CollocationDataModule(steps_per_epoch=4)
    t = trainer(tmp_path, max_steps=1000, callbacks=[lbfgs], enable_checkpointing=False)
    t.fit(module, datamodule=data)
    assert lbfgs.iterations == 45
    assert t.global_step == 5 + 3  # 20 + 20 + 5 iterations
    assert isinstance(t.optimizers[0], torch.optim.LBFGS)
    assert module.dtype == torch.float64 and data.collocation_points["pde"].dtype == torch.float64
    assert t.callback_metrics["lbfgs/iterations"] == 45


def test_checkpoint_round_trip_with_no_extra_arguments(tmp_path):
    pl.seed_everything(0)
    module = PINN(Burgers(nu=0.02, n_pde=64, n_initial=16, n_boundary=16), MLP([8, 8], "sin"),
                  loss_weights={"initial": 5.0})
    t = trainer(tmp_path, max_steps=3)
    t.fit(module, datamodule=CollocationDataModule(steps_per_epoch=3))
    path = tmp_path / "model.ckpt"
    t.save_checkpoint(path)
    x = torch.rand(10, 2)
    for loaded in (lightning_pde.load(path), PINN.load_from_checkpoint(path)):
        assert isinstance(loaded, PINN)
        assert loaded.problem.nu == 0.02 and loaded.loss_weights["initial"] == 5.0
        assert loaded.net.activation == "sin"
        torch.testing.assert_close(loaded(x), module(x), rtol=0, atol=0)


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lightning_pde.load(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        lightning_pde.load(tmp_path / "junk.ckpt")


def test_validation_without_gradients_is_a_clear_error(tmp_path):
    module = tiny_poisson()
    t = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(RuntimeError, match="inference_mode=False"):
        t.validate(module, datamodule=CollocationDataModule())


def test_forward_contract_and_input_normalisation():
    module = PINN(Burgers(), MLP([8]))
    x = torch.tensor([[-1.0, 0.0], [1.0, 1.0]])
    assert module(x).shape == (2, 1)
    torch.testing.assert_close(module.input_center * 0 + (x[1] - module.input_center) * module.input_scale,
                               torch.tensor([1.0, 1.0]))


def test_unknown_loss_weight_is_named():
    with pytest.raises(ValueError, match=r"loss_weights has unknown condition\(s\) \['inital'\]"):
        PINN(Burgers(), loss_weights={"inital": 2.0})


def test_residual_with_an_unknown_input_name_fails_at_construction():
    from lightning_pde.problems.base import Condition

    class Typo(Burgers):
        def conditions(self):
            conds = super().conditions()
            conds["pde"] = Condition("pde", conds["pde"].sample, lambda f: f["u_z"], 10)
            return conds

    with pytest.raises(ValueError, match=r"condition 'pde' of Typo cannot be evaluated .*unknown field or derivative "
                                         r"'u_z'"):
        PINN(Typo(), MLP([4]))
