"""PID and PIDDM on Darcy fields (K, p): the residual metric and PIDDM's physics term use DarcyFlow's finite-volume
operator; the physics term lowers the residual of a tiny student; the forward problem; mismatched PDEs and missing
backbones are clear errors."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

import lightning_pde
from lightning_pde.callbacks.pid_plot import plot_samples
from lightning_pde.data import DarcyFlow, PoissonFields
from lightning_pde.data.darcy import darcy_relative_residual, solve_darcy
from lightning_pde.diffusion import UNetBackbone
from lightning_pde.diffusion.teachers import DenoiserTeacher
from lightning_pde.metrics import FieldResidual
from lightning_pde.modules.edm import EDMTeacher
from lightning_pde.modules.pid import PIDStudent
from lightning_pde.modules.piddm import PIDDM


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def trainer(steps: int, **kwargs) -> pl.Trainer:
    kwargs = {"limit_val_batches": 0, **kwargs}
    return pl.Trainer(max_steps=steps, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, **kwargs)


def darcy(n_train: int = 512, n_val: int = 32, batch_size: int = 32) -> DarcyFlow:
    return DarcyFlow(n=8, n_train=n_train, n_val=n_val, batch_size=batch_size)


@pytest.fixture(scope="module")
def darcy_teacher(tmp_path_factory):
    """A tiny EDM teacher on 8 x 8 Darcy fields, validated once (so its residual metric is Darcy's), saved."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("darcy_teacher")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LPDE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        teacher = EDMTeacher(backbone=UNetBackbone(2, 8, 16), data_shape=[2, 8, 8], lr=3e-3, sample_steps=6)
        fit = trainer(80, limit_val_batches=1, check_val_every_n_epoch=5)
        fit.fit(teacher, darcy())
    fit.save_checkpoint(root / "teacher.ckpt")
    return root / "teacher.ckpt", fit.callback_metrics, teacher


def test_field_residual_metric_uses_the_data_modules_pde():
    data = darcy(n_train=8, n_val=4)
    data.setup()
    metric = FieldResidual("darcy")
    metric.update(data.train)
    assert float(metric.compute()) < 1e-5  # the solver's own pairs
    wrong = data.train.clone()
    wrong[:, 1] *= 1.1  # p 10 % too large: residual 0.1 f everywhere
    metric.reset()
    metric.update(wrong)
    assert float(metric.compute()) == pytest.approx(0.1, rel=1e-3)
    negative = wrong.clone()
    negative[:, 0] = -1.0  # K floored, not a division by zero
    assert torch.isfinite(darcy_relative_residual(negative)).all()
    poisson = FieldResidual("poisson")
    poisson.update(data.train)
    assert float(poisson.compute()) > 0.1  # the Poisson operator does not hold for Darcy pairs
    with pytest.raises(ValueError, match="FieldResidual: pde must be one of \\['darcy', 'poisson'\\], got 'heat'"):
        FieldResidual("heat")


def test_teacher_validates_with_the_darcy_residual(darcy_teacher):
    _, metrics, teacher = darcy_teacher
    assert teacher.field_residual.pde == "darcy"
    assert "val/residual" in metrics and torch.isfinite(metrics["val/residual"])


def test_piddm_physics_term_lowers_the_darcy_residual_and_solves_the_forward_problem(darcy_teacher, tmp_path):
    path, _, _ = darcy_teacher
    residuals = {}
    for lam in (0.0, 3.0):
        torch.manual_seed(0)
        model = PIDDM(teacher=str(path), lam=lam, lam_warmup=30, residual="darcy", n_pairs=64, teacher_steps=4,
                      batch_size=32, lr=1e-3)
        fit = trainer(60)
        fit.fit(model, darcy(n_train=64, n_val=8, batch_size=8))
        samples = model.sample(64, generator=torch.Generator().manual_seed(1)).double()
        residuals[lam] = float(darcy_relative_residual(samples).mean())
    assert residuals[3.0] < 0.5 * residuals[0.0], residuals
    fit.save_checkpoint(tmp_path / "piddm.ckpt")
    loaded = lightning_pde.load(tmp_path / "piddm.ckpt")
    assert type(loaded) is PIDDM and loaded.residual_name == "darcy"
    data = darcy(n_train=8, n_val=4)
    data.setup()
    # the physics term of the solver's own pairs is zero (up to float32 round-off in the operator)
    assert float(loaded.physics_loss(loaded.teacher.from_data(data.val))) < 1e-8
    mask = torch.zeros(1, 2, 1, 1)
    mask[:, 0] = 1.0  # forward problem: K observed, p generated
    solved = loaded.solve(data.val, mask, steps=50, lam=10.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(solved[:, 0], data.val[:, 0])
    exact = torch.from_numpy(solve_darcy(data.val[:, 0].double().numpy())).float()
    error = float((solved[:, 1] - exact).norm() / exact.norm())
    blind = float((loaded.sample(4)[:, 1] - exact).norm() / exact.norm())
    assert error < 0.7 * blind, (error, blind)


def test_piddm_refuses_data_of_another_pde(darcy_teacher):
    path, _, _ = darcy_teacher
    model = PIDDM(teacher=str(path), residual="poisson", n_pairs=4, teacher_steps=3)
    with pytest.raises(ValueError, match="PIDDM: residual='poisson' but the data module's fields are 'darcy' "
                                         "fields; set --model.residual=darcy"):
        trainer(1).fit(model, darcy(n_train=8, n_val=4, batch_size=4))
    with pytest.raises(ValueError, match="PIDDM: residual must be one of \\['darcy', 'poisson'\\], got 'heat'"):
        PIDDM(teacher=str(path), residual="heat")


def test_teacher_on_unnamed_fields_logs_no_residual():
    """Two-channel fields whose data module names no PDE get no residual: none would be meaningful."""

    class Unnamed(PoissonFields):
        pde = None

    teacher = EDMTeacher(backbone=UNetBackbone(2, 8, 16), data_shape=[2, 8, 8], sample_steps=3)
    fit = trainer(2, limit_val_batches=1, check_val_every_n_epoch=1)
    fit.fit(teacher, Unnamed(n=8, n_train=8, n_val=4, batch_size=4))
    assert teacher.field_residual is None and "val/swd" in fit.callback_metrics
    assert "val/residual" not in fit.callback_metrics


def test_field_student_without_a_network_to_copy_needs_a_backbone(darcy_teacher):
    _, _, teacher = darcy_teacher
    with pytest.warns(UserWarning, match="cannot be stored"):
        bare = DenoiserTeacher(lambda x, sigma: teacher.denoise(x, sigma), data_shape=[2, 8, 8])
    with pytest.raises(ValueError, match="PIDStudent: the teacher has no network to copy and its samples are "
                                         "\\[2, 8, 8\\] fields; pass a backbone"):
        PIDStudent(teacher=bare)
    student = PIDStudent(teacher=bare, backbone=UNetBackbone(2, 8, 16), n_grid=4)
    assert student.sample(2).shape == (2, 2, 8, 8)


def test_darcy_sample_picture(darcy_teacher, tmp_path):
    _, _, teacher = darcy_teacher
    path = plot_samples(teacher.sample(3, steps=3), None, tmp_path / "darcy.png", title="t", pde="darcy")
    assert path.is_file() and path.stat().st_size > 5000
    assert plot_samples(torch.rand(2, 1, 8, 8), None, tmp_path / "one.png", pde=None).is_file()


def test_conditional_sampling_keeps_the_observations_and_names_bad_conditions(darcy_teacher, tmp_path):
    path, _, _ = darcy_teacher
    model = PIDDM(teacher=str(path), residual="darcy", n_pairs=4, teacher_steps=3)
    data = darcy(n_train=8, n_val=4)
    data.setup()
    values = data.val.clone()
    mask = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    mask = torch.cat([torch.zeros_like(mask), mask], 1)  # 30 % of p observed
    values[mask == 0] = float("nan")  # unobserved entries may be NaN: never read
    out = model.sample(4, generator=torch.Generator().manual_seed(0), condition=(mask, values))
    assert out.shape == (4, 2, 8, 8) and torch.isfinite(out).all()
    torch.testing.assert_close(out[mask == 1], data.val[mask == 1])
    assert model.sample(3).shape == (3, 2, 8, 8)
    for condition, match in [
        ((mask, values[:, :1]),
         "observed values must be a tensor \\(B, 2, 8, 8\\) in data units, got \\[4, 1, 8, 8\\]"),
        ((torch.ones(4, 3, 8, 8), data.val), "mask of shape \\[4, 3, 8, 8\\] does not broadcast"),
        ((0.5 * mask, data.val), "mask must hold only 0 \\(free\\) and 1 \\(observed\\)"),
        ((torch.ones(1, 2, 1, 1), values), "observed values must be finite where the mask is 1"),
        ((mask,), "condition must be a pair \\(mask, values\\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            model.sample(4, condition=condition)
    with pytest.raises(ValueError, match="n = 5 but the condition holds 4 fields"):
        model.sample(5, condition=(mask, data.val))
