"""A small UNet2DModel, built and trained here with diffusers' own EDM preconditioning, as a PID teacher: the adapter
is the scheduler's preconditioning of the UNet's output, a PID student distils it and reloads, bad inputs are named."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("lpde_diffusers")

import lightning_pde  # noqa: E402
from lightning_pde import registry  # noqa: E402
from lightning_pde.data import PoissonFields  # noqa: E402
from lightning_pde.modules.pid import PIDStudent  # noqa: E402
from lpde_diffusers import DiffusersTeacher, DiffusersUNet  # noqa: E402

SIGMA_DATA = 0.5


def small_unet(**overrides) -> diffusers.UNet2DModel:
    config = dict(sample_size=8, in_channels=2, out_channels=2, layers_per_block=1, block_out_channels=(16, 32),
                  down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                  norm_num_groups=8)
    return diffusers.UNet2DModel(**{**config, **overrides})


def trainer(steps: int) -> pl.Trainer:
    return pl.Trainer(max_steps=steps, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, limit_val_batches=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A UNet2DModel trained for 40 steps on 8x8 Poisson fields (normalised to std 0.5 per channel) the way a
    diffusers user trains one: EDM loss through EDMEulerScheduler's precondition_* functions. Returns the UNet, the
    data's mean and std, and the losses."""
    torch.manual_seed(0)
    data = PoissonFields(n=8, n_train=256, n_val=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LPDE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        data.setup()
    mean, std = data.normalization()
    x0 = (data.train - mean) * (SIGMA_DATA / std)
    unet, scheduler = small_unet(), diffusers.EDMEulerScheduler(sigma_data=SIGMA_DATA)
    optimizer = torch.optim.Adam(unet.parameters(), lr=2e-3)
    losses = []
    for step in range(40):
        x = x0[torch.randint(len(x0), (32,))]
        sigma = (-1.2 + 1.2 * torch.randn(32)).exp()
        s = sigma.reshape(-1, 1, 1, 1)
        noisy = x + s * torch.randn_like(x)
        out = unet(scheduler.precondition_inputs(noisy, s), scheduler.precondition_noise(sigma)).sample
        denoised = scheduler.precondition_outputs(noisy, out, s)
        weight = (s**2 + SIGMA_DATA**2) / (s * SIGMA_DATA) ** 2
        loss = (weight * (denoised - x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return unet.eval(), mean.flatten().tolist(), std.flatten().tolist(), losses


def test_registered_and_trained(trained):
    assert registry.get("nets", "DiffusersTeacher") is DiffusersTeacher
    losses = trained[3]
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])  # it learned something: a trained, not a random, teacher


def test_adapter_is_the_schedulers_preconditioning_of_the_unets_output(trained, tmp_path):
    unet = trained[0]
    teacher = DiffusersTeacher(unet, sigma_data=SIGMA_DATA)
    assert teacher.data_shape == (2, 8, 8)  # from the UNet's config
    scheduler = diffusers.EDMEulerScheduler(sigma_data=SIGMA_DATA)
    x = 3.0 * torch.randn(5, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.002, 0.05, 0.5, 5.0, 80.0])
    s = sigma.reshape(-1, 1, 1, 1)
    with torch.no_grad():
        expected = scheduler.precondition_outputs(
            x, unet(scheduler.precondition_inputs(x, s), scheduler.precondition_noise(sigma)).sample, s)
        torch.testing.assert_close(teacher.denoise(x, sigma), expected)
        # the same through a directory written by save_pretrained, as users ship their models
        unet.save_pretrained(tmp_path / "unet")
        torch.testing.assert_close(DiffusersTeacher(str(tmp_path / "unet")).denoise(x, sigma), expected)
        # at the lowest level the denoiser is close to the identity (c_skip -> 1, c_out -> 0)
        assert float((teacher.denoise(x, 0.002) - x).abs().max()) < 0.05


def test_teacher_samples_are_data_like_after_brief_training(trained):
    unet, mean, std, _ = trained
    teacher = DiffusersTeacher(unet, data_mean=mean, data_std=std, sample_steps=8)
    samples = teacher.sample(64, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (64, 2, 8, 8) and torch.isfinite(samples).all()
    ratio = samples.std((0, 2, 3)) / torch.tensor(std)
    assert bool(((ratio > 0.3) & (ratio < 3)).all()), ratio  # data units, near the data's scale per channel


def test_pid_student_distils_the_unet_and_reloads(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_DIR", str(tmp_path))
    unet, mean, std, _ = trained
    teacher = DiffusersTeacher(unet, data_mean=mean, data_std=std)
    student = PIDStudent(teacher=teacher, n_grid=8, batch_size=4)
    assert isinstance(student.backbone, DiffusersUNet) and student.backbone.unet is not unet  # a copy, as PID does
    torch.manual_seed(0)
    z, index = 80.0 * torch.randn(4, 2, 8, 8), torch.tensor([0, 3, 6, 7])
    before = float(student.pid_loss(z, index))
    fit = trainer(2)
    fit.fit(student, PoissonFields(n=8, n_train=8, n_val=4, batch_size=4))
    assert all(not p.requires_grad for p in student.teacher.parameters())
    assert float(student.pid_loss(z, index)) != before  # the student moved; the teacher did not
    with torch.no_grad():
        torch.testing.assert_close(student.teacher.unet(torch.ones(1, 2, 8, 8), torch.zeros(1)).sample,
                                   unet(torch.ones(1, 2, 8, 8), torch.zeros(1)).sample)
    fit.save_checkpoint(tmp_path / "student.ckpt")
    loaded = lightning_pde.load(tmp_path / "student.ckpt")  # the UNet's config in the spec, weights in state_dict
    assert isinstance(loaded.teacher, DiffusersTeacher)
    torch.testing.assert_close(loaded.sample(3, generator=torch.Generator().manual_seed(1)),
                               student.sample(3, generator=torch.Generator().manual_seed(1)))


def test_bad_inputs_are_named(trained):
    teacher = DiffusersTeacher(trained[0])
    with pytest.raises(ValueError, match=r"DiffusersTeacher: x must be \(B, 2, 8, 8\), got \(3, 1, 8, 8\)"):
        teacher.denoise(torch.randn(3, 1, 8, 8), 1.0)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        teacher.denoise(torch.randn(3, 2, 8, 8), torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"sigma must be a number or a tensor of shape \(\) or \(3,\)"):
        teacher.denoise(torch.randn(3, 2, 8, 8), torch.ones(3, 1))
    network = teacher.denoiser.backbone
    with pytest.raises(ValueError, match=r"DiffusersUNet: x must be \(B, 2, H, W\), got \(3, 3, 8, 8\)"):
        network(torch.randn(3, 3, 8, 8), torch.zeros(3))
    with pytest.raises(ValueError, match=r"they must be multiples of 2, got \(7, 7\)"):
        network(torch.randn(3, 2, 7, 7), torch.zeros(3))


@pytest.mark.parametrize("unet, kwargs, match", [
    (lambda: small_unet(time_embedding_type="fourier"), {}, "time_embedding_type must be 'positional'"),
    (lambda: small_unet(num_class_embeds=10), {}, "class-conditional UNets are not supported"),
    (lambda: small_unet(out_channels=1), {}, "out_channels must equal in_channels = 2, got 1"),
    (lambda: small_unet(), {"data_shape": [3, 8, 8]}, r"data_shape must be \[2, H, W\]"),
    (lambda: small_unet(), {"data_shape": [2, 8, 7]}, "H and W must be multiples of 2"),
    (lambda: small_unet(), {"sigma_data": 0.0}, "sigma_data must be"),
    (lambda: "no/such/directory", {}, "is not a directory written by UNet2DModel.save_pretrained"),
    (lambda: torch.nn.Linear(2, 2), {}, "unet must be a diffusers UNet2DModel, its config"),
])
def test_bad_teachers_are_named(unet, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffusersTeacher(unet(), **kwargs)
