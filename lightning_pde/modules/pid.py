"""Physics-informed distillation (PID; Tee et al., arXiv 2411.08378): a one-step student trained, data-free, so
that its trajectory x_theta(z, t) satisfies the teacher's probability-flow ODE dx/dt = (x - D(x, t)) / t."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_pde import CHECKPOINT_CLASS_KEY
from lightning_pde.diffusion import MLPBackbone, karras_sigmas
from lightning_pde.metrics import SlicedWassersteinDistance
from lightning_pde.modules.edm import _checkpoint_hparams, attach_field_residual, validation_metrics
from lightning_pde.spec import Configurable, class_path, from_spec, is_spec, to_spec
from lightning_pde.validation import boolean, integer_at_least, integer_list, positive_float

DISTANCES = ("l2", "pseudo_huber")
TEACHER_METHODS = ("denoise", "to_data", "data_shape", "sigma_data")


def resolve_teacher(owner: str, teacher: Any) -> nn.Module:
    """A teacher from a checkpoint path, a spec or an object; checks it has the teacher interface."""
    if teacher is None:
        # No default teacher file: a path that depends on the working directory would pick up whatever an earlier
        # run left there. The teacher run prints its checkpoint path; the user hands it over explicitly.
        raise ValueError(f"{owner}: no teacher given: pass a teacher checkpoint with --model.teacher=PATH (the "
                         f"path `lpde fit --config configs/pid/poisson_teacher.yaml` prints at the end), or a "
                         f"denoiser such as GaussianMixtureDenoiser")
    if isinstance(teacher, (str, Path)):
        path = Path(teacher)
        if not path.is_file():
            raise ValueError(f"{owner}: teacher checkpoint {str(path)!r} does not exist (train it first, e.g. "
                             f"`lpde fit --config configs/pid/poisson_teacher.yaml`, and pass the checkpoint path it "
                             f"prints)")
        import lightning_pde

        teacher = lightning_pde.load(path, map_location="cpu")
    elif is_spec(teacher):
        teacher = from_spec(teacher)
    missing = [name for name in TEACHER_METHODS if not hasattr(teacher, name)]
    if teacher is None or missing:
        raise ValueError(f"{owner}: teacher must be a checkpoint path or a denoiser with "
                         f"{', '.join(TEACHER_METHODS)}, got {type(teacher).__name__} (missing {missing})")
    return teacher


def teacher_spec(teacher: nn.Module) -> Any:
    """Plain-data spec that rebuilds `teacher`'s architecture (its weights travel in the student's state_dict)."""
    if isinstance(teacher, Configurable):
        return to_spec(teacher)
    args = getattr(teacher, "spec_args", None)
    if args is None:
        args = {k: v for k, v in teacher.hparams.items() if not k.startswith("_")}
    return {"class_path": class_path(teacher), "init_args": to_spec(dict(args))}


def distance(kind: str, prediction: Tensor, target: Tensor) -> Tensor:
    """Per-sample distance: ``l2`` mean squared error, or ``pseudo_huber`` sqrt(||x - y||^2 + c^2) - c with
    c = 0.00054 sqrt(dim) (Song & Dhariwal, arXiv 2310.14189, Sec. 3.3)."""
    diff = (prediction - target).flatten(1)
    if kind == "l2":
        return (diff**2).mean(1)
    c = 0.00054 * math.sqrt(diff.shape[1])
    return ((diff**2).sum(1) + c**2).sqrt() - c


class PIDStudent(pl.LightningModule):
    """One-step generator distilled from a diffusion teacher with the PID loss (arXiv 2411.08378).

    Student: x_theta(z, t) = (t / T) z + (1 - t / T) F(z / sqrt(sigma_data^2 + T^2), ln(t) / 4), so x_theta(z, T) = z
    exactly (T = sigma_max). Loss over the Karras grid t_0 = T > ... > t_{N-1} = sigma_min, i uniform, j = i + 1
    (j = N - 2 at the last point), with D the frozen teacher and sg the stop-gradient::

        d( x_theta(z, t_i) - t_i (x_theta(z, t_i) - x_theta(z, t_j)) / (t_i - t_j),  sg D(x_theta(z, t_i), t_i) )

    Zero loss means x_theta(z, sigma_min) is the N-step Euler solution of the teacher's ODE from z. No data is used:
    the noise z ~ N(0, T^2 I) is drawn in the module from seed + 1000 * rank (distinct per DDP rank). Sampling is one
    call ``x_theta(z, sigma_min)``, returned in data units.

    Args:
        teacher: a teacher checkpoint path (an :class:`EDMTeacher`), or a denoiser object/spec with ``denoise``,
            ``to_data``, ``data_shape`` and ``sigma_data`` such as ``GaussianMixtureDenoiser``. Required: None is
            an error that says how to pass one (there is no default file).
        backbone: the network F; default: a copy of the teacher's network with its weights (as PID does), or an
            ``MLPBackbone`` for an analytic vector teacher.
        data_shape: expected shape of one sample; checked against the teacher's (optional).
        n_grid: points N of the Karras time grid.
        sigma_min: smallest time (where the sample is read).
        sigma_max: largest time T (the prior's standard deviation).
        rho: exponent of the Karras grid.
        distance: ``l2`` or ``pseudo_huber``.
        batch_size: noise samples per step and rank.
        lr: Adam learning rate.
        cosine: decay the learning rate to 0 along a cosine over the trainer's ``max_steps``.
        seed: seed of the noise stream.
    """

    def __init__(self, teacher: str | nn.Module | dict | None = None, backbone: nn.Module | None = None,
                 data_shape: list[int] | None = None, n_grid: int = 64, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0, distance: str = "l2", batch_size: int = 256,
                 lr: float = 1e-3, cosine: bool = False, seed: int = 0) -> None:
        super().__init__()
        owner = type(self).__name__
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        teacher = resolve_teacher(owner, teacher)
        self.teacher = teacher.eval().requires_grad_(False)
        self.hparams["teacher"] = teacher_spec(teacher)
        _checkpoint_hparams(self.hparams)
        self.data_shape = tuple(teacher.data_shape)
        if data_shape is not None and tuple(integer_list(owner, "data_shape", data_shape)) != self.data_shape:
            raise ValueError(f"{owner}: data_shape must match the teacher's {list(self.data_shape)}, "
                             f"got {list(data_shape)}")
        self.n_grid = integer_at_least(owner, "n_grid", n_grid, 2)
        self.sigma_min = positive_float(owner, "sigma_min", sigma_min)
        self.sigma_max = positive_float(owner, "sigma_max", sigma_max)
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"{owner}: sigma_max must be > sigma_min = {sigma_min}, got {sigma_max!r}")
        self.rho = positive_float(owner, "rho", rho)
        if distance not in DISTANCES:
            raise ValueError(f"{owner}: distance must be one of {DISTANCES}, got {distance!r}")
        self.distance = distance
        self.batch_size = integer_at_least(owner, "batch_size", batch_size, 1)
        self.lr = positive_float(owner, "lr", lr)
        self.cosine = boolean(owner, "cosine", cosine)
        self.seed = integer_at_least(owner, "seed", seed, 0)
        backbone = from_spec(backbone)
        if backbone is None:
            source = getattr(teacher, "ema", None) if getattr(teacher, "ema_decay", 0) else None
            source = source if source is not None else getattr(teacher, "backbone", None)
            if source is None and len(self.data_shape) != 1:
                raise ValueError(f"{owner}: the teacher has no network to copy and its samples are "
                                 f"{list(self.data_shape)} fields; pass a backbone for them (e.g. "
                                 f"--model.backbone=UNetBackbone)")
            backbone = copy.deepcopy(source) if source is not None else MLPBackbone(dim=self.data_shape[0])
        if not isinstance(backbone, nn.Module):
            raise ValueError(f"{owner}: backbone must be a torch.nn.Module or its spec, got {backbone!r}")
        self.backbone = backbone.requires_grad_(True)
        self.sigma_data = float(teacher.sigma_data)
        self.register_buffer("sigmas", karras_sigmas(self.n_grid, sigma_min, sigma_max, rho).float(),
                             persistent=False)
        self.swd, self.field_residual = SlicedWassersteinDistance(), None
        self._noise: torch.Generator | None = None

    # -- the student ---------------------------------------------------------------------------------------------
    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        """x_theta(z, t) in the teacher's normalised units; z (B, *data_shape), t (B,)."""
        t_ = t.reshape(-1, *([1] * (z.ndim - 1)))
        c_in = 1.0 / math.sqrt(self.sigma_data**2 + self.sigma_max**2)
        return (t_ / self.sigma_max) * z + (1 - t_ / self.sigma_max) * self.backbone(c_in * z, t.log() / 4)

    def generate(self, z: Tensor) -> Tensor:
        """One-step samples in normalised units from noise z ~ N(0, sigma_max^2 I)."""
        return self(z, torch.full((len(z),), self.sigma_min, device=z.device, dtype=z.dtype))

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n samples in data units, one network call (`steps` is accepted for interface symmetry and ignored)."""
        z = self.sigma_max * torch.randn(n, *self.data_shape, generator=generator).to(self.sigmas)
        return self.teacher.to_data(self.generate(z))

    # -- training ------------------------------------------------------------------------------------------------
    def noise(self, n: int) -> Tensor:
        """n draws of z ~ N(0, sigma_max^2 I) from this rank's stream."""
        if self._noise is None:
            # distinct per rank; a resumed run continues with a fresh stream for its step
            rank, step = (self.trainer.global_rank, self.global_step) if self._trainer is not None else (0, 0)
            self._noise = torch.Generator().manual_seed(self.seed + 1000 * rank + 1_000_003 * step)
        return self.sigma_max * torch.randn(n, *self.data_shape, generator=self._noise).to(self.sigmas)

    def pid_loss(self, z: Tensor, index: Tensor) -> Tensor:
        """Mean PID loss for noise z and grid indices `index` (B,) in [0, N - 1]."""
        neighbour = torch.where(index == self.n_grid - 1, self.n_grid - 2, index + 1)
        t, t_next = self.sigmas[index], self.sigmas[neighbour]
        both = self(torch.cat([z, z]), torch.cat([t, t_next]))  # the two student evaluations in one pass
        x, x_next = both.chunk(2)
        shape = (-1, *([1] * (z.ndim - 1)))
        slope = (x - x_next) / (t - t_next).reshape(shape)
        with torch.no_grad():
            target = self.teacher.denoise(x.detach(), t)
        return distance(self.distance, x - t.reshape(shape) * slope, target).mean()

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        shape = getattr(datamodule, "data_shape", None)
        if shape is not None and tuple(shape) != self.data_shape:
            raise ValueError(f"{type(self).__name__}: the teacher's data shape {list(self.data_shape)} does not "
                             f"match the data module's {list(shape)}")
        attach_field_residual(self, datamodule)

    def on_train_start(self) -> None:
        self.teacher.eval()
        self.backbone.train()  # a copy of a loaded teacher's network arrives in eval mode

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        z = self.noise(self.batch_size)
        index = torch.randint(self.n_grid, (self.batch_size,), generator=self._noise).to(z.device)
        loss = self.pid_loss(z, index)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{type(self).__name__}: non-finite loss at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        generator = torch.Generator().manual_seed(batch_idx)
        validation_metrics(self, self.sample(len(batch[0]), generator=generator), batch[0])

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.backbone.parameters(), lr=self.lr)
        total = self.trainer.max_steps if self._trainer is not None else -1
        if not self.cosine or total is None or total < 1:
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_CLASS_KEY] = class_path(self)
