import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from lightning_pde import registry
from lightning_pde.modules import PINN
from lightning_pde.nn import TTMLP
from lightning_pde.problems import Poisson2D
from lightning_pde.derivatives import Stein
from lightning_pde.quant import SMXLinear
from lpde_smx import SMXPrecision


def test_registered_and_validated():
    assert registry.get("precision", "SMXPrecision") is SMXPrecision
    with pytest.raises(ValueError, match="grad_bits"):
        SMXPrecision(grad_bits=1)


def test_convert_module_swaps_layers_sharing_parameters():
    net = TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None], in_features=2, out_features=1)
    before = [id(p) for p in net.parameters()]
    plugin = SMXPrecision()
    plugin.convert_module(net)
    assert isinstance(net.layers[0], SMXLinear) and isinstance(net.layers[2], SMXLinear)
    assert net.layers[1].weight_quant is not None and plugin.converted == 3
    assert [id(p) for p in net.parameters()] == before
    with pytest.raises(ValueError, match="no nn.Linear"):
        SMXPrecision().convert_module(nn.Sequential(nn.Tanh()))


def test_trainer_fits_with_the_plugin(tmp_path):
    torch.manual_seed(0)
    model = PINN(Poisson2D(n_pde=16, n_boundary=8), TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None]),
                 derivatives=Stein(samples=8, diffquant=True), fused=False)
    from lightning_pde.data import CollocationDataModule

    trainer = pl.Trainer(max_steps=3, plugins=[SMXPrecision()], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, default_root_dir=tmp_path, limit_val_batches=0,
                         inference_mode=False)
    first = model.net.layers[1].cores[0].detach().clone()
    trainer.fit(model, datamodule=CollocationDataModule(steps_per_epoch=3))
    assert isinstance(model.net.layers[0], SMXLinear)
    assert not torch.equal(first, model.net.layers[1].cores[0])


def test_an_engine_that_cannot_serve_the_quantized_network_is_refused_before_training():
    # Stein without DiffQuant rounds its perturbations away under SMX: the plugin re-checks the module's engine
    model = PINN(Poisson2D(n_pde=16, n_boundary=8), TTMLP(hidden=[16, 16], tt_shapes=[None, [[4, 4], [4, 4]], None]),
                 derivatives=Stein(samples=8), fused=False)
    with pytest.raises(ValueError, match="diffquant=True"):
        SMXPrecision().convert_module(model)
