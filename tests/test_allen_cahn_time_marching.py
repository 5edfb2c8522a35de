"""Time marching (TimeMarching callback, TimeWindows network) and the Allen-Cahn config that uses it."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lightning_pde import registry
from lightning_pde.callbacks.time_marching import TimeMarching
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP, PeriodicEmbedding
from lightning_pde.nn.time_windows import TimeWindows
from lightning_pde.problems import Poisson2D
from lightning_pde.problems.allen_cahn import AllenCahn
from lightning_pde.problems.heat import Heat

ROOT = Path(__file__).resolve().parents[1]


def trainer(tmp_path, callbacks, **kwargs):
    return pl.Trainer(inference_mode=False, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, default_root_dir=tmp_path, callbacks=list(callbacks),
                      accelerator="cpu", devices=1, limit_val_batches=0, max_epochs=-1, **kwargs)


class Recorder(pl.Callback):
    """Per training step: the window being trained and the time range of each condition's points."""

    def __init__(self, marching, time_index):
        self.marching, self.time_index, self.steps = marching, time_index, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        t = {name: (float(p[:, self.time_index].min()), float(p[:, self.time_index].max()))
             for name, p in batch.items()}
        self.steps.append((self.marching.window, t))


def windowed_net(n_windows, hidden=(16, 16)):
    return TimeWindows(MLP(list(hidden)), n_windows=n_windows)


# -- TimeWindows ----------------------------------------------------------------------------------------------------
def test_time_windows_route_each_point_to_its_slab():
    torch.manual_seed(0)
    net = windowed_net(4, hidden=(8,)).build(2, 1, ["x", "t"]).double()
    x = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    x[:4, 1] = torch.tensor([-1.0, -0.5, 0.0, 1.0])  # the edges: each belongs to the later window, 1 to the last
    expected_window = torch.clamp(torch.floor((x[:, 1] + 1) / 0.5), max=3).long()
    assert expected_window[:4].tolist() == [0, 1, 2, 3]
    u = net(x)
    for k in range(4):
        rows = expected_window == k
        torch.testing.assert_close(u[rows], net.forward_window(x[rows], k), rtol=0, atol=0)
    # window k sees its own slab's time on [-1, 1]: at the slab's lower edge, window k is window 0 at t = -1
    net.windows[2].load_state_dict(net.windows[0].state_dict())
    start0, start2 = x[:8].clone(), x[:8].clone()
    start0[:, 1], start2[:, 1] = -1.0, 0.0
    torch.testing.assert_close(net(start2), net(start0), rtol=0, atol=1e-15)
    net.active_window = 1
    torch.testing.assert_close(net(x), net.forward_window(x, 1), rtol=0, atol=0)


def test_time_windows_forward_laplacian_matches_autograd_across_windows():
    torch.manual_seed(1)
    net = TimeWindows(MLP([8, 8], embedding=PeriodicEmbedding(["x"], harmonics=2)), n_windows=3)
    net.build(2, 1, ["x", "t"], {"x": 2.0}).double()
    x = (torch.rand(60, 2, dtype=torch.float64) * 2 - 1).requires_grad_()
    u = net(x)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    second = [torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2)]
    value, jacobian, laplacian = net.forward_laplacian(x.detach())
    torch.testing.assert_close(value, u.detach(), rtol=0, atol=1e-13)
    torch.testing.assert_close(jacobian[:, :, 0], grad.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(laplacian[:, 0], (second[0] + second[1]).detach(), rtol=0, atol=1e-10)
    assert len(torch.unique(net.window_of(x[:, 1]))) == 3  # the points really span every window


def test_time_windows_refuse_bad_arguments():
    with pytest.raises(ValueError, match="TimeWindows: n_windows"):
        TimeWindows(n_windows=0)
    with pytest.raises(ValueError, match="TimeWindows: net must be a network"):
        TimeWindows(net="MLP")
    with pytest.raises(ValueError, match="TimeWindows: no input named 't'"):
        TimeWindows().build(2, 1, ["x1", "x2"])


# -- TimeMarching ---------------------------------------------------------------------------------------------------
def heat_module(net):
    return PINN(Heat(dim=1, n_pde=256, n_initial=64, n_boundary=64), net, loss_weights={"initial": 10.0}).double()


def relative_error(module, n=2000):
    x = module.problem.domain.sample(n, torch.Generator().manual_seed(5))
    with torch.no_grad():
        u = module(x)
    exact = module.problem.exact(x)
    return float((u - exact).norm() / exact.norm())


def test_window_by_window_marching_trains_each_slab_in_order_and_hands_the_state_on(tmp_path):
    torch.manual_seed(0)
    module = heat_module(windowed_net(3))
    original = dict(module.conditions)
    marching = TimeMarching(adam_steps=20, lbfgs_iterations=300, iterations_per_step=50)
    recorder = Recorder(marching, time_index=1)
    datamodule = CollocationDataModule(sampling="uniform", steps_per_epoch=10)
    trainer(tmp_path, [marching, recorder]).fit(module, datamodule=datamodule)

    windows = [w for w, _ in recorder.steps]
    assert windows == sorted(windows) and set(windows) == {0, 1, 2}
    edges = [0.0, 1 / 3, 2 / 3, 1.0]
    for window, ranges in recorder.steps:  # every condition's points lie in the slab being trained
        for low, high in ranges.values():
            assert edges[window] - 1e-12 <= low <= high <= edges[window + 1] + 1e-12
        assert ranges["initial"] == pytest.approx((edges[window], edges[window]), abs=1e-12)
    assert marching.finished and module.net.active_window is None
    assert all(module.conditions[name] is cond for name, cond in original.items())

    # the piecewise solution is continuous across the window edges and matches u = |x|^2 / 2 + t
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None]
    for k in (1, 2):
        at_edge = torch.cat([x, torch.full_like(x, edges[k])], 1)
        with torch.no_grad():
            before = module.net.forward_window((at_edge - module.input_center) * module.input_scale, k - 1)
            after = module(at_edge)
        assert float((before - after).abs().max()) < 1e-3
    assert relative_error(module) < 1e-3


def test_growing_window_marching_trains_one_network_on_longer_and_longer_intervals(tmp_path):
    torch.manual_seed(0)
    module = heat_module(MLP([16, 16]))
    marching = TimeMarching(n_windows=2, adam_steps=20, lbfgs_iterations=300, iterations_per_step=50)
    recorder = Recorder(marching, time_index=1)
    trainer(tmp_path, [marching, recorder]).fit(
        module, datamodule=CollocationDataModule(sampling="uniform", steps_per_epoch=10))
    for window, ranges in recorder.steps:
        low, high = ranges["pde"]
        assert low < 0.05 and 0.4 < high <= (window + 1) / 2 + 1e-12
        assert ranges["initial"] == (0.0, 0.0)  # the problem's own initial condition throughout
    assert {w for w, _ in recorder.steps} == {0, 1}
    assert relative_error(module) < 1e-3


def test_time_marching_refuses_bad_set_ups(tmp_path):
    with pytest.raises(ValueError, match="TimeMarching: adam_steps and lbfgs_iterations are both 0"):
        TimeMarching(adam_steps=0, lbfgs_iterations=0)
    with pytest.raises(ValueError, match="TimeMarching: match"):
        TimeMarching(match=[])
    cases = [(heat_module(windowed_net(3)), TimeMarching(n_windows=2), "n_windows=2 but the TimeWindows network"),
             (heat_module(MLP([4])), TimeMarching(), "give n_windows"),
             (PINN(Poisson2D(), MLP([4])), TimeMarching(n_windows=2), "Poisson2D has no input 't'")]
    for module, marching, message in cases:
        with pytest.raises(ValueError, match=message):
            trainer(tmp_path, [marching], max_steps=1).fit(module, datamodule=CollocationDataModule())


# -- the Allen-Cahn config --------------------------------------------------------------------------------------------
def test_allen_cahn_config_marches_through_its_windows_and_reloads(tmp_path):
    from lightning_pde.cli import LPDECLI

    import yaml

    config = yaml.safe_load((ROOT / "configs" / "pinn" / "allen_cahn.yaml").read_text())
    (spec,) = [c for c in config["trainer"]["callbacks"] if c["class_path"] == "TimeMarching"]
    spec["init_args"].update(adam_steps=2, lbfgs_iterations=3)  # a tiny budget, same everything else
    path = tmp_path / "allen_cahn.yaml"
    path.write_text(yaml.safe_dump(config))
    registry.load_all()
    args = ["--config", str(path), f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false",
            "--trainer.logger=false", "--model.init_args.problem.init_args.n_pde=64",
            "--model.init_args.problem.init_args.n_initial=16", "--model.init_args.problem.init_args.n_periodic=8"]
    cli = LPDECLI(run=False, args=args)
    marching = next(c for c in cli.trainer.callbacks if isinstance(c, TimeMarching))
    assert isinstance(cli.model.problem, AllenCahn) and isinstance(cli.model.net, TimeWindows)
    assert (marching.adam_steps, marching.lbfgs_iterations) == (2, 3)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert marching.finished and cli.trainer.global_step == 10 * 3
    checkpoint = cli.trainer.checkpoint_callback.last_model_path
    loaded = PINN.load_from_checkpoint(checkpoint)
    x = torch.tensor([[0.3, 0.05], [0.3, 0.55], [-0.7, 1.0]], dtype=torch.float64)
    with torch.no_grad():  # PINN.load_from_checkpoint builds in float32, so the weights come back rounded
        torch.testing.assert_close(loaded.double()(x), cli.model(x), rtol=0, atol=1e-6)
    torch.testing.assert_close(loaded.net.edges, cli.model.net.edges.to(loaded.net.edges))


@pytest.mark.slow
def test_allen_cahn_config_reaches_one_percent(tmp_path):
    """The issue's target: relative L2 <= 1e-2 with the shipped config (about 10 minutes on one idle core)."""
    from lightning_pde.demo import fit_and_score

    result = fit_and_score(ROOT / "configs" / "pinn" / "allen_cahn.yaml", tmp_path,
                           ["--trainer.enable_progress_bar=false"])
    assert result["rel_l2"] <= 1e-2, result
