"""Teachers the project did not train: EDM preconditioning around a raw network, any denoiser D(x, sigma) behind the
teacher interface, a PID student distilling them, checkpoints, errors."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import lightning_pde
from lightning_pde.data import GaussianMixture2D, PoissonFields
from lightning_pde.diffusion import MLPBackbone, UNetBackbone
from lightning_pde.diffusion.teachers import DenoiserTeacher, PreconditionedDenoiser
from lightning_pde.modules.edm import EDMTeacher
from lightning_pde.modules.pid import PIDStudent

MU, LAM = torch.tensor([0.3, -1.0]), torch.tensor([0.25, 2.0])


def gaussian_denoiser(x, sigma):
    """Exact D(x, sigma) of x_0 ~ N(MU, diag(LAM))."""
    return MU + LAM / (LAM + sigma[:, None] ** 2) * (x - MU)


def trainer(steps: int, **kwargs) -> pl.Trainer:
    return pl.Trainer(max_steps=steps, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, limit_val_batches=0, **kwargs)


class Probe(nn.Module):
    """F(x, c_noise) = 2 x + c_noise: the preconditioning can be written out by hand."""

    def forward(self, x, c_noise):
        return 2 * x + c_noise.reshape(-1, *([1] * (x.ndim - 1)))


def test_preconditioning_is_edm_table_1():
    x, sigma, sd = torch.randn(5, 3, dtype=torch.float64), torch.tensor([0.002, 0.1, 0.5, 3.0, 80.0]), 0.7
    d = PreconditionedDenoiser(Probe(), sigma_data=sd)(x, sigma.double())
    s = sigma.double()[:, None]
    c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / (s**2 + sd**2).sqrt(), 1 / (s**2 + sd**2).sqrt()
    torch.testing.assert_close(d, c_skip * x + c_out * (2 * c_in * x + s.log() / 4))


def test_preconditioned_unet_is_the_edm_teachers_denoiser():
    torch.manual_seed(0)
    teacher = EDMTeacher(backbone=UNetBackbone(2, 8, 16), data_shape=[2, 8, 8], ema_decay=0.0)
    wrapped = PreconditionedDenoiser(teacher.backbone, sigma_data=teacher.sigma_data)
    x, sigma = torch.randn(4, 2, 8, 8), torch.tensor([0.01, 0.3, 2.0, 50.0])
    torch.testing.assert_close(wrapped(x, sigma), teacher.denoise(x, sigma))


def test_any_function_samples_its_exact_flow_in_data_units():
    """A plain function as the teacher: its Heun samples follow the exact probability-flow map of N(MU, LAM),
    x = MU + sqrt(LAM / (LAM + T^2)) (z - MU) from the same z (second order: 0.042 at 40 steps, 0.010 at 80), mapped
    to data units by data_mean + x data_std / sigma_data."""
    with pytest.warns(UserWarning, match="cannot be stored in a checkpoint spec"):
        teacher = DenoiserTeacher(gaussian_denoiser, data_shape=[2], sigma_data=0.5, data_mean=[10.0, -5.0],
                                  data_std=[1.0, 0.5], sample_steps=80)
    x = teacher.sample(2000, generator=torch.Generator().manual_seed(0))
    z = 80.0 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    exact = MU + torch.sqrt(LAM / (LAM + 80.0**2)) * (z - MU)
    assert float((teacher.from_data(x) - exact).abs().max()) < 0.02
    torch.testing.assert_close(x, torch.tensor([10.0, -5.0]) + teacher.from_data(x) * torch.tensor([2.0, 1.0]))
    assert teacher.backbone is None  # nothing for a student to copy: it needs its own backbone


def test_pid_student_distils_a_plain_function():
    """The mixture's exact denoiser as a bare function: the student trains on it and its one-step samples move from
    the prior towards the data."""
    from lightning_pde.diffusion import GaussianMixtureDenoiser
    from lightning_pde.metrics import SlicedWassersteinDistance

    exact = GaussianMixtureDenoiser()
    with pytest.warns(UserWarning):
        teacher = DenoiserTeacher(lambda x, s: exact.denoise(x, s), data_shape=[2], sigma_data=exact.sigma_data)
    torch.manual_seed(0)
    student = PIDStudent(teacher=teacher, backbone=MLPBackbone(2, [64, 64]), n_grid=16, batch_size=128, lr=3e-3)
    data = GaussianMixture2D(n_train=256, n_val=500, batch_size=8)

    def distance() -> float:
        metric = SlicedWassersteinDistance()
        data.setup()
        metric.update(student.sample(500, generator=torch.Generator().manual_seed(1)), data.val)
        return float(metric.compute())

    before = distance()
    trainer(150).fit(student, data)
    assert distance() < 0.5 * before


def test_pid_student_of_a_preconditioned_unet_trains_and_reloads(tmp_path):
    """A Configurable denoiser: the student's default network is a copy of its raw U-Net, one training step changes
    it, and the student checkpoint rebuilds the teacher from its spec (weights in the state_dict)."""
    torch.manual_seed(0)
    teacher = DenoiserTeacher(PreconditionedDenoiser(UNetBackbone(2, 8, 16), sigma_data=0.5), data_shape=[2, 8, 8],
                              data_mean=[0.0, 0.01], data_std=[1.0, 0.02])
    student = PIDStudent(teacher=teacher, n_grid=8, batch_size=4)
    assert isinstance(student.backbone, UNetBackbone) and student.backbone is not teacher.backbone
    before = [p.detach().clone() for p in student.backbone.parameters()]
    fit = trainer(1)
    fit.fit(student, PoissonFields(n=8, n_train=8, n_val=4, batch_size=4))
    assert any(not torch.equal(a, b) for a, b in zip(before, student.backbone.parameters()))
    assert all(not p.requires_grad for p in student.teacher.parameters())  # the teacher stays frozen
    fit.save_checkpoint(tmp_path / "student.ckpt")
    loaded = lightning_pde.load(tmp_path / "student.ckpt")
    assert isinstance(loaded.teacher, DenoiserTeacher)
    torch.testing.assert_close(loaded.teacher.data_std, teacher.data_std)
    x, sigma = torch.randn(2, 2, 8, 8), torch.tensor([0.5, 5.0])
    torch.testing.assert_close(loaded.teacher.denoise(x, sigma), student.teacher.denoise(x, sigma))
    torch.testing.assert_close(loaded.sample(3, generator=torch.Generator().manual_seed(0)),
                               student.sample(3, generator=torch.Generator().manual_seed(0)))


def test_student_checkpoint_of_a_function_teacher_asks_for_the_teacher(tmp_path):
    with pytest.warns(UserWarning):
        teacher = DenoiserTeacher(gaussian_denoiser, data_shape=[2])
    student = PIDStudent(teacher=teacher, backbone=MLPBackbone(2, [8]), n_grid=4, batch_size=4)
    fit = trainer(1)
    fit.fit(student, GaussianMixture2D(n_train=8, n_val=4, batch_size=4))
    fit.save_checkpoint(tmp_path / "student.ckpt")
    with pytest.raises(ValueError, match="load it with the teacher passed again"):
        lightning_pde.load(tmp_path / "student.ckpt")
    loaded = PIDStudent.load_from_checkpoint(tmp_path / "student.ckpt", teacher=teacher, weights_only=True)
    torch.testing.assert_close(loaded.sample(3, generator=torch.Generator().manual_seed(0)),
                               student.sample(3, generator=torch.Generator().manual_seed(0)))


def test_bad_calls_are_named():
    teacher = DenoiserTeacher(PreconditionedDenoiser(UNetBackbone(2, 8, 16)), data_shape=[2, 8, 8])
    x = torch.randn(3, 2, 8, 8)
    with pytest.raises(ValueError, match=r"DenoiserTeacher: x must be \(B, 2, 8, 8\), got \(3, 1, 8, 8\)"):
        teacher.denoise(x[:, :1], torch.ones(3))
    with pytest.raises(ValueError, match=r"x must be \(B, 2, 8, 8\), got \(2, 8, 8\)"):
        teacher.denoise(x[0], 1.0)
    with pytest.raises(ValueError, match=r"sigma must be a number or a tensor of shape \(\) or \(3,\)"):
        teacher.denoise(x, torch.ones(2))
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        teacher.denoise(x, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        teacher.denoise(x, math.nan)
    with pytest.raises(ValueError, match="sigma must be a number"):
        teacher.denoise(x, "big")
    with pytest.warns(UserWarning):
        wrong = DenoiserTeacher(lambda x, s: x[:, :1], data_shape=[2, 8, 8])
    with pytest.raises(ValueError, match=r"must return a tensor shaped like x \(3, 2, 8, 8\), got \(3, 1, 8, 8\)"):
        wrong.denoise(x, 1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"denoiser": None}, "denoiser must be a callable"),
    ({"denoiser": 3.0}, "denoiser must be a callable"),
    ({"data_shape": None}, "data_shape is required"),
    ({"data_shape": [2, 0]}, "data_shape must be a non-empty list of integers >= 1"),
    ({"sigma_data": -1.0}, "sigma_data must be"),
    ({"data_mean": [0.0, 1.0, 2.0]}, "data_mean must be a finite number or a list of 2"),
    ({"data_std": [1.0, 0.0]}, "data_std must be > 0"),
    ({"sigma_max": 0.001}, "sigma_max must be > sigma_min"),
    ({"sample_steps": 1}, "sample_steps must be an integer >= 2"),
])
def test_bad_arguments_are_named(kwargs, match):
    arguments = {"denoiser": PreconditionedDenoiser(MLPBackbone(2, [8])), "data_shape": [2], **kwargs}
    with pytest.raises(ValueError, match=match):
        DenoiserTeacher(**arguments)
    with pytest.raises(ValueError, match="backbone must be a network"):
        PreconditionedDenoiser(lambda x, c: x)
