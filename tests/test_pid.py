"""EDM teacher, PID student and PIDDM: exact oracles for the schedule, sampler, denoiser and PID loss; small
trainings; checkpoints; errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

import lightning_pde
from lightning_pde.data import GaussianMixture2D, PoissonFields
from lightning_pde.data.poisson_fields import _poisson_matrix, laplacian_5point, relative_residual
from lightning_pde.diffusion import (GaussianMixtureDenoiser, MLPBackbone, UNetBackbone, heun_sample,
                                     karras_sigmas)
from lightning_pde.metrics import FieldResidual, SlicedWassersteinDistance
from lightning_pde.modules.edm import EDMTeacher
from lightning_pde.modules.pid import PIDStudent
from lightning_pde.modules.piddm import PIDDM


def trainer(steps: int, **kwargs) -> pl.Trainer:
    return pl.Trainer(max_steps=steps, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, limit_val_batches=0, **kwargs)


def swd(x, y) -> float:
    metric = SlicedWassersteinDistance()
    metric.update(x, y)
    return float(metric.compute())


# -- schedule, sampler, analytic denoiser -----------------------------------------------------------------------
def test_karras_grid_endpoints_and_monotone():
    sigmas = karras_sigmas(18, 0.002, 80.0, 7.0)
    assert sigmas[0].item() == pytest.approx(80.0) and sigmas[-1].item() == pytest.approx(0.002)
    assert bool((sigmas[1:] < sigmas[:-1]).all())


def test_heun_matches_exact_gaussian_flow():
    """For x_0 ~ N(mu, lam) the PF-ODE flow is x(t) = mu + sqrt((lam + t^2) / (lam + T^2)) (z - mu)."""
    mu, lam = torch.tensor([0.3, -1.0]), torch.tensor([0.25, 2.0])
    denoiser = lambda x, s: mu + lam / (lam + s[:, None] ** 2) * (x - mu)  # noqa: E731
    z = 80.0 * torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = mu + torch.sqrt(lam / (lam + 80.0**2)) * (z - mu)
    errors = [float((heun_sample(denoiser, z, karras_sigmas(n)) - exact).abs().max()) for n in (40, 160)]
    assert errors[1] < 2e-3 and errors[1] < errors[0] / 10  # second order: 4x the steps, >= 16x smaller error


def test_mlp_backbone_learns_a_sharp_function_of_x_quickly():
    """x gets its own first-layer map: concatenated with the 64-wide noise features, 2-D x started at a 1/sqrt(66)
    weight scale and sin(3 x_1) stayed at MSE 0.25 after 400 steps (an EDM teacher of the mixture did not learn)."""
    torch.manual_seed(0)
    net = MLPBackbone(2, [128, 128])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(300):
        x, c_noise = torch.randn(256, 2), torch.rand(256) - 0.5
        loss = ((net(x, c_noise) - torch.stack([torch.sin(3 * x[:, 0]), 0.3 * x[:, 1]], 1)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.05


def test_mixture_denoiser_with_one_component_is_the_gaussian_posterior_mean():
    denoiser = GaussianMixtureDenoiser(n_components=1, radius=1.5, std=0.3)
    x, sigma = torch.randn(10, 2), torch.rand(10) * 3 + 0.1
    expected = torch.tensor([1.5, 0.0]) + 0.09 / (0.09 + sigma[:, None] ** 2) * (x - torch.tensor([1.5, 0.0]))
    assert torch.allclose(denoiser.denoise(x, sigma), expected, atol=1e-6)


def test_mixture_teacher_samples_match_the_data():
    teacher = GaussianMixtureDenoiser()
    data = teacher.sample_data(3000, torch.Generator().manual_seed(1))
    good = swd(teacher.sample(3000, 35, torch.Generator().manual_seed(2)), data)
    bad = swd(teacher.sample(3000, 2, torch.Generator().manual_seed(2)), data)
    assert good < 0.12 < bad


# -- data and metrics -------------------------------------------------------------------------------------------
def test_poisson_fields_solve_the_5_point_system(tmp_path, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_DIR", str(tmp_path))
    data = PoissonFields(n=8, n_train=20, n_val=5)
    data.setup()
    assert data.train.shape == (20, 2, 8, 8)
    assert float(relative_residual(data.train.double()).max()) < 1e-5
    u = torch.randn(3, 8, 8, dtype=torch.float64)  # the stencil is the sparse matrix used by the solver
    matrix = torch.from_numpy(_poisson_matrix(8).toarray())
    assert torch.allclose(-laplacian_5point(u).reshape(3, -1), u.reshape(3, -1) @ matrix.T)
    again = PoissonFields(n=8, n_train=20, n_val=5)
    again.setup()  # from the cache
    assert torch.equal(again.train, data.train)


def test_gaussian_mixture_data_follow_design():
    data = GaussianMixture2D(n_train=8000, n_val=10)
    data.setup()
    radius = data.train.norm(dim=1)
    assert abs(float(radius.mean()) - 2.0) < 0.02 and float(radius.std()) < 0.12


def test_sliced_wasserstein_of_a_shift():
    x = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
    assert swd(x, x) == 0.0
    shift = torch.tensor([1.0, -1.0, 2.0, 0.0])  # E[(theta . v)^2] = |v|^2 / d
    metric = SlicedWassersteinDistance(n_projections=4000)
    metric.update(x + shift, x)
    assert float(metric.compute()) == pytest.approx(float(shift.norm()) / 2, rel=0.05)


def test_field_residual_metric():
    metric = FieldResidual()
    a = torch.randn(4, 8, 8)
    metric.update(torch.stack([a, torch.zeros_like(a)], 1))
    assert float(metric.compute()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="FieldResidual"):
        metric.update(torch.zeros(2, 3, 8, 8))


# -- the PID loss and student -----------------------------------------------------------------------------------
def test_student_boundary_condition_and_euler_oracle_zero_loss():
    teacher = GaussianMixtureDenoiser()
    student = PIDStudent(teacher=teacher, backbone=MLPBackbone(2, [16]), n_grid=12)
    z = 80.0 * torch.randn(5, 2)
    assert torch.allclose(student(z, torch.full((5,), 80.0)), z)
    # an oracle student that returns the N-step Euler trajectory makes the loss vanish at i < N - 1 (Theorem 1)
    sigmas = student.sigmas
    trajectory = [z]
    for t, t_next in zip(sigmas[:-1], sigmas[1:]):
        x = trajectory[-1]
        trajectory.append(x + (t_next - t) * (x - teacher.denoise(x, t.expand(5))) / t)
    stacked = torch.stack(trajectory)  # (N, 5, 2)

    def oracle(z_, t_):
        index = (sigmas[None, :] - t_[:, None]).abs().argmin(1)
        return stacked[index, torch.arange(len(z_)) % 5]

    student.forward = oracle
    index = torch.arange(11).repeat_interleave(5)
    assert float(student.pid_loss(z.repeat(11, 1), index)) < 1e-8
    perturbed = stacked.clone()
    perturbed[5] += 0.1
    stacked.copy_(perturbed)
    assert float(student.pid_loss(z.repeat(11, 1), index)) > 1e-4


def test_pid_student_learns_the_mixture():
    torch.manual_seed(0)
    teacher = GaussianMixtureDenoiser()
    student = PIDStudent(teacher=teacher, backbone=MLPBackbone(2, [128, 128]), n_grid=32, batch_size=256,
                         lr=3e-3, distance="pseudo_huber")
    data = teacher.sample_data(2000, torch.Generator().manual_seed(1))
    z = 80.0 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(2))
    one_step_euler = swd(teacher.denoise(z, torch.tensor(80.0)), data)
    with torch.no_grad():
        before = float(student.pid_loss(student.noise(1024), torch.randint(32, (1024,))))
    trainer(400).fit(student, GaussianMixture2D(n_train=256 * 400, n_val=100, batch_size=256))
    with torch.no_grad():
        after = float(student.pid_loss(student.noise(1024), torch.randint(32, (1024,))))
    result = swd(student.sample(2000, generator=torch.Generator().manual_seed(2)), data)
    assert after < before / 3
    assert result < 0.3 * one_step_euler and result < 0.4  # the 1-step Euler baseline is about 1.4


def test_noise_streams_differ_per_rank():
    a = PIDStudent(teacher=GaussianMixtureDenoiser(), backbone=MLPBackbone(2, [8]))
    b = PIDStudent(teacher=GaussianMixtureDenoiser(), backbone=MLPBackbone(2, [8]))
    a._trainer = SimpleNamespace(global_rank=0, global_step=0)
    b._trainer = SimpleNamespace(global_rank=1, global_step=0)
    assert not torch.equal(a.noise(4), b.noise(4))


def test_bad_teacher_and_arguments_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match="teacher checkpoint .*does not exist"):
        PIDStudent(teacher=str(tmp_path / "missing.ckpt"))
    with pytest.raises(ValueError, match="data_shape must match the teacher's \\[2\\], got \\[2, 16, 16\\]"):
        PIDStudent(teacher=GaussianMixtureDenoiser(), data_shape=[2, 16, 16])
    with pytest.raises(ValueError, match="distance must be one of"):
        PIDStudent(teacher=GaussianMixtureDenoiser(), distance="lpips")
    with pytest.raises(ValueError, match="n_grid"):
        PIDStudent(teacher=GaussianMixtureDenoiser(), n_grid=1)
    with pytest.raises(ValueError, match="PIDDM: the teacher must generate"):
        PIDDM(teacher=GaussianMixtureDenoiser())
    student = PIDStudent(teacher=GaussianMixtureDenoiser(), backbone=MLPBackbone(2, [8]))
    with pytest.raises(ValueError, match="does not match the data module's \\[2, 8, 8\\]"):
        trainer(1).fit(student, PoissonFields(n=8, n_train=8, n_val=4, batch_size=4))


# -- teacher, checkpoints, PIDDM --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def field_teacher(tmp_path_factory):
    """A tiny EDM teacher on 8x8 Poisson fields, saved as a checkpoint."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("teacher")
    teacher = EDMTeacher(backbone=UNetBackbone(2, 8, 16), data_shape=[2, 8, 8], lr=3e-3, sample_steps=6)
    fit = trainer(60)
    fit.fit(teacher, PoissonFields(n=8, n_train=512, n_val=32, batch_size=32))
    fit.save_checkpoint(root / "teacher.ckpt")
    return root / "teacher.ckpt"


def test_teacher_checkpoint_reloads_and_samples_in_data_units(field_teacher):
    teacher = lightning_pde.load(field_teacher)
    assert isinstance(teacher, EDMTeacher) and teacher.data_shape == (2, 8, 8)
    samples = teacher.sample(16, steps=4, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (16, 2, 8, 8)
    assert 0.05 < float(samples[:, 0].std() / teacher.data_std[0].squeeze()) < 20  # data units, not normalised


def test_student_checkpoint_reloads_without_the_teacher_file(field_teacher, tmp_path):
    import shutil

    path = tmp_path / "teacher.ckpt"
    shutil.copy(field_teacher, path)
    student = PIDStudent(teacher=str(path), data_shape=[2, 8, 8], n_grid=8, batch_size=8)
    fit = trainer(3)
    fit.fit(student, PoissonFields(n=8, n_train=64, n_val=8, batch_size=8))
    fit.save_checkpoint(tmp_path / "student.ckpt")
    path.unlink()  # the student's checkpoint carries the teacher's weights and spec
    loaded = lightning_pde.load(tmp_path / "student.ckpt")
    assert type(loaded) is PIDStudent
    torch.testing.assert_close(loaded.sample(4, generator=torch.Generator().manual_seed(3)),
                               student.sample(4, generator=torch.Generator().manual_seed(3)))


def test_piddm_physics_term_lowers_the_residual_and_solves_the_forward_problem(field_teacher, tmp_path):
    residuals = {}
    for lam in (0.0, 3.0):
        torch.manual_seed(0)
        model = PIDDM(teacher=str(field_teacher), lam=lam, lam_warmup=30, n_pairs=64, teacher_steps=4,
                      batch_size=32, lr=1e-3)
        fit = trainer(60)
        fit.fit(model, PoissonFields(n=8, n_train=64, n_val=8, batch_size=8))
        samples = model.sample(64, generator=torch.Generator().manual_seed(1)).double()
        residuals[lam] = float(relative_residual(samples).mean())
    # 0.28x measured; without the warm-up the full weight from step 0 gave only 0.82x
    assert residuals[3.0] < 0.5 * residuals[0.0]
    fit.save_checkpoint(tmp_path / "piddm.ckpt")
    loaded = lightning_pde.load(tmp_path / "piddm.ckpt")
    assert type(loaded) is PIDDM and loaded.lam == 3.0 and loaded.lam_warmup == 30
    data = PoissonFields(n=8, n_train=8, n_val=4)
    data.setup()
    mask = torch.zeros(1, 2, 1, 1)
    mask[:, 0] = 1.0  # forward problem: a observed, u generated
    solved = loaded.solve(data.val, mask, steps=50, lam=10.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(solved[:, 0], data.val[:, 0])  # observed a kept (up to normalisation round-off)
    error = float((solved[:, 1] - data.val[:, 1]).norm() / data.val[:, 1].norm())
    blind = float((loaded.sample(4)[:, 1] - data.val[:, 1]).norm() / data.val[:, 1].norm())
    assert error < 0.7 * blind


def test_piddm_denoiser_student_starts_as_the_teachers_one_step_prediction(field_teacher):
    """The default student is the teacher's preconditioned network at sigma_max: untrained, d(eps) = D(z, T). The
    PID parametrisation read at sigma_min instead starts far off (the teacher's head at the lowest noise level)."""
    teacher = lightning_pde.load(field_teacher)
    z = 80.0 * torch.randn(6, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    student = PIDDM(teacher=str(field_teacher), n_pairs=4, teacher_steps=3)
    torch.testing.assert_close(student.generate(z), teacher.denoise(z, torch.tensor(80.0)))
    pid = PIDDM(teacher=str(field_teacher), n_pairs=4, teacher_steps=3, parametrization="pid")
    assert not torch.allclose(pid.generate(z), teacher.denoise(z, torch.tensor(80.0)), atol=1e-2)
    with pytest.raises(ValueError, match="PIDDM: parametrization must be one of"):
        PIDDM(teacher=str(field_teacher), parametrization="consistency")


def test_piddm_physics_weight_warms_up_linearly(field_teacher):
    model = PIDDM(teacher=str(field_teacher), lam=10.0, lam_warmup=100, n_pairs=4, teacher_steps=3)
    assert [model.physics_weight(step) for step in (0, 50, 100, 400)] == [0.0, 5.0, 10.0, 10.0]
    assert PIDDM(teacher=str(field_teacher), lam=10.0, n_pairs=4, teacher_steps=3).physics_weight(0) == 10.0
