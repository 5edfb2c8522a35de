import math

import pytest
import pytorch_lightning as pl
import torch

from lightning_pde.callbacks import CausalWeighting, GradientNormWeighting, ResidualAdaptiveRefinement
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP, FourierFeatures, PeriodicEmbedding
from lightning_pde.problems import Burgers, Heat, Poisson2D


def trainer(tmp_path, max_steps, callbacks=(), **kwargs):
    return pl.Trainer(max_steps=max_steps, inference_mode=False, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
                      callbacks=list(callbacks), accelerator="cpu", devices=1, **kwargs)


class PeriodicBurgers(Burgers):
    periodic_inputs = {"x": 2.0}


def residual_of(module, name, n=50):
    cond = module.problem.conditions()[name]
    x = cond.sample(n, torch.Generator().manual_seed(0), "uniform").to(module.dtype)
    return cond.residual(module.fields(x))


@pytest.mark.parametrize("problem", [Burgers(), Poisson2D(), Heat(dim=3)], ids=lambda p: p.name)
def test_hard_constraints_satisfy_their_conditions_exactly(problem):
    module = PINN(problem, MLP([8]), hard_constraints=True).double()
    for name in problem.hard_conditions:
        assert name not in module.conditions
        assert residual_of(module, name).abs().max() < 1e-14
    assert "pde" in module.conditions


def test_hard_constraints_need_a_transform():
    class Plain(Poisson2D):
        hard_conditions = ()

    with pytest.raises(ValueError, match="no hard-constraint transform"):
        PINN(Plain(), hard_constraints=True)


def test_periodic_embedding_makes_the_network_exactly_periodic():
    module = PINN(PeriodicBurgers(), MLP([16, 16], embedding=PeriodicEmbedding(["x"], harmonics=2))).double()
    t = torch.rand(20, 1, dtype=torch.float64)
    left, right = torch.cat([-torch.ones_like(t), t], 1), torch.cat([torch.ones_like(t), t], 1)
    fl, fr = module.fields(left), module.fields(right)
    torch.testing.assert_close(fl["u"], fr["u"], rtol=0, atol=1e-12)
    torch.testing.assert_close(fl["u_x"], fr["u_x"], rtol=0, atol=1e-11)
    assert module.net.layers[0].in_features == 1 + 2 * 2


def test_periodic_embedding_frequencies_stay_exact_through_a_float32_round_trip():
    """A network trained in float32 and then cast back (GPT-PINN's float32 neurons) must compute what a freshly
    built float64 copy with the same weights computes: the frequencies are not rounded to float32 on the way."""
    def build():
        return PINN(PeriodicBurgers(), MLP([8], embedding=PeriodicEmbedding(["x"], harmonics=3))).double()

    module = build().float().double()
    fresh = build()
    fresh.load_state_dict(module.state_dict())  # the same (rounded) weights; its frequencies are built in float64
    assert module.net.embedding.angular.dtype == torch.float64
    torch.testing.assert_close(module.net.embedding.angular, fresh.net.embedding.angular, rtol=0, atol=0)
    x = torch.rand(16, 2, dtype=torch.float64)
    torch.testing.assert_close(module(x), fresh(x), rtol=0, atol=1e-15)


def test_periodic_embedding_on_a_non_periodic_input_is_an_error_at_construction():
    with pytest.raises(ValueError, match=r"input\(s\) \['x'\] are not periodic in this problem"):
        PINN(Burgers(), MLP([8], embedding=PeriodicEmbedding(["x"])))


def test_fourier_features_are_rebuilt_identically_from_a_checkpoint(tmp_path):
    module = PINN(Poisson2D(n_pde=32, n_boundary=16), MLP([8], embedding=FourierFeatures(n_features=4, scale=2.0)))
    assert module.net.layers[0].in_features == 2 + 8
    path = tmp_path / "ff.ckpt"
    t = trainer(tmp_path, 2)
    t.fit(module, datamodule=CollocationDataModule(steps_per_epoch=2))
    t.save_checkpoint(path)
    loaded = PINN.load_from_checkpoint(path)
    x = torch.rand(7, 2)
    torch.testing.assert_close(loaded(x), module(x), rtol=0, atol=0)


def test_gradient_norm_weighting_balances_the_terms(tmp_path):
    pl.seed_everything(0)
    module = PINN(Burgers(n_pde=128, n_initial=32, n_boundary=32), MLP([16]))
    weighting = GradientNormWeighting(update_every=1, alpha=0.0)
    trainer(tmp_path, 2, [weighting]).fit(module, datamodule=CollocationDataModule(steps_per_epoch=2))
    # with alpha = 0 the weights are exactly the balancing ones: lambda_i ||grad L_i|| equal for all i
    batch = CollocationDataModule(problem=module.problem).sample(0)
    params = list(module.parameters())
    weighted = []
    for name, loss in module.condition_losses(batch).items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        norm = torch.sqrt(sum(g.square().sum() for g in grads if g is not None))
        weighted.append(float(norm) * module.loss_weights[name])
    assert max(weighted) / min(weighted) < 1.5  # one optimizer step after the update
    assert set(weighting.weights) == {"pde", "initial", "boundary"}


def test_causal_weights_follow_the_formula():
    causal = CausalWeighting(epsilon=2.0, n_chunks=4)
    causal._index, causal._t_min, causal._t_max = 1, 0.0, 1.0
    t = torch.tensor([0.1, 0.3, 0.6, 0.9])
    points = torch.stack([torch.zeros(4), t], 1)
    residual = torch.tensor([1.0, 2.0, 3.0, 4.0])  # slab losses 1, 4, 9, 16
    expected = (1 + math.exp(-2 * 1) * 4 + math.exp(-2 * 5) * 9 + math.exp(-2 * 14) * 16) / 4
    assert abs(float(causal.reduce(residual, points)) - expected) < 1e-6
    assert abs(causal.min_weight - math.exp(-28)) < 1e-12


def test_causal_weighting_trains_and_rejects_bad_inputs(tmp_path):
    module = PINN(Burgers(n_pde=64, n_initial=16, n_boundary=16), MLP([8]))
    causal = CausalWeighting(epsilon=1.0, n_chunks=8)
    trainer(tmp_path, 3, [causal]).fit(module, datamodule=CollocationDataModule(steps_per_epoch=3))
    assert module.reductions["pde"] == causal.reduce and 0 < causal.min_weight <= 1
    with pytest.raises(ValueError, match="has no input 'time'"):
        trainer(tmp_path, 1, [CausalWeighting(time_input="time")]).fit(
            PINN(Burgers(), MLP([8])), datamodule=CollocationDataModule())


def test_rar_adds_the_worst_candidates_and_keeps_them(tmp_path):
    pl.seed_everything(0)
    module = PINN(Burgers(n_pde=64, n_initial=16, n_boundary=16), MLP([8]))
    rar = ResidualAdaptiveRefinement(every_n_epochs=1, n_candidates=500, n_add=20)
    data = CollocationDataModule(steps_per_epoch=2, resample_every=1)
    trainer(tmp_path, 4, [rar]).fit(module, datamodule=data)
    added = data.added_points["pde"]
    assert len(added) == 2 * 20 and rar.refinements == 2
    # added points are in the training set after resampling too
    assert len(data.sample(5)["pde"]) == 64 + 40
    # they are the top residuals of their candidate set
    cond = module.conditions["pde"]
    candidates = cond.sample(500, torch.Generator().manual_seed(10_001), "uniform").float()
    score = cond.residual(module.fields(candidates)).detach().abs()
    assert score[torch.topk(score, 20).indices].min() >= torch.quantile(score, 0.9)
    assert data.state_dict()["added_points"]["pde"].shape == (40, 2)


def test_float64_training_with_lightning_precision(tmp_path):
    module = PINN(Poisson2D(n_pde=32, n_boundary=16), MLP([8]))
    data = CollocationDataModule(steps_per_epoch=2)
    trainer(tmp_path, 2, precision="64-true").fit(module, datamodule=data)
    assert module.dtype == torch.float64 and data.collocation_points["pde"].dtype == torch.float64
