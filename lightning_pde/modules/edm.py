"""EDM diffusion teacher (Karras, Aittala, Aila & Laine 2022, arXiv 2206.00364) as a LightningModule."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_pde import CHECKPOINT_CLASS_KEY
from lightning_pde.diffusion import MLPBackbone, TeacherSampling, edm_scalings
from lightning_pde.metrics import FieldResidual, SlicedWassersteinDistance
from lightning_pde.spec import class_path, from_spec, to_spec
from lightning_pde.validation import finite_float, integer_at_least, integer_list, positive_float


def _checkpoint_hparams(hparams: dict[str, Any]) -> None:
    from lightning_pde.modules.pinn import checkpoint_hparams

    checkpoint_hparams(hparams)


def validation_metrics(module: pl.LightningModule, samples: Tensor, reference: Tensor) -> None:
    """Update and log sliced Wasserstein distance to the validation data (and, where the data module names its PDE,
    the mean relative residual of the samples: :func:`attach_field_residual`)."""
    module.swd.update(samples, reference)
    module.log("val/swd", module.swd, on_epoch=True, prog_bar=True)
    if module.field_residual is not None:
        module.field_residual.update(samples)
        module.log("val/residual", module.field_residual, on_epoch=True, prog_bar=True)


def attach_field_residual(module: pl.LightningModule, datamodule: Any) -> None:
    """Give `module` the :class:`FieldResidual` of its data module's ``pde`` (``poisson``, ``darcy``), or none when
    the data name no PDE: a residual is only meaningful under the operator that generated the data."""
    pde = getattr(datamodule, "pde", None)
    module.field_residual = FieldResidual(pde) if pde is not None else None


class EDMTeacher(TeacherSampling, pl.LightningModule):
    """Denoiser D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) trained with the EDM loss: sigma log-normal
    (ln sigma ~ N(p_mean, p_std^2)), weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (arXiv 2206.00364,
    Table 1 and Eq. 8). Samples with the deterministic Heun sampler on the Karras grid (Algorithm 1).

    The data are normalised per channel to standard deviation `sigma_data` (statistics from the data module's
    ``normalization()``, kept as buffers in the checkpoint); `sample` returns data units.

    Args:
        backbone: the network F, called as ``F(x, c_noise)``; default ``MLPBackbone(dim=data_shape[0])``.
        data_shape: shape of one sample, e.g. ``[2]`` or ``[2, 16, 16]``.
        sigma_data: standard deviation the normalised data have.
        p_mean: mean of ln sigma in training.
        p_std: standard deviation of ln sigma in training.
        sigma_min: smallest noise level of the sampler.
        sigma_max: largest noise level (the prior is N(0, sigma_max^2 I)).
        rho: exponent of the Karras grid.
        sample_steps: Karras grid points of the Heun sampler used by `sample` and in validation.
        lr: Adam learning rate.
        ema_decay: decay of the exponential moving average of the weights used for sampling (0 disables it).
    """

    def __init__(self, backbone: nn.Module | None = None, data_shape: list[int] | None = None,
                 sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0, sample_steps: int = 18, lr: float = 1e-3,
                 ema_decay: float = 0.999) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        _checkpoint_hparams(self.hparams)
        names = ("backbone", "data_shape", "sigma_data", "p_mean", "p_std", "sigma_min", "sigma_max", "rho",
                 "sample_steps", "lr", "ema_decay")
        #: this teacher's own constructor arguments as plain data (a student stores them to rebuild it)
        self.spec_args = {name: self.hparams[name] for name in names if name in self.hparams}
        self.data_shape = tuple(integer_list("EDMTeacher", "data_shape", [2] if data_shape is None else data_shape))
        self.sigma_data = positive_float("EDMTeacher", "sigma_data", sigma_data, maximum=1e6)
        self.p_mean = finite_float("EDMTeacher", "p_mean", p_mean)
        self.p_std = positive_float("EDMTeacher", "p_std", p_std)
        self.sigma_min = positive_float("EDMTeacher", "sigma_min", sigma_min)
        self.sigma_max = positive_float("EDMTeacher", "sigma_max", sigma_max)
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"EDMTeacher: sigma_max must be > sigma_min = {sigma_min}, got {sigma_max!r}")
        self.rho = positive_float("EDMTeacher", "rho", rho)
        self.sample_steps = integer_at_least("EDMTeacher", "sample_steps", sample_steps, 2)
        self.lr = positive_float("EDMTeacher", "lr", lr)
        self.ema_decay = finite_float("EDMTeacher", "ema_decay", ema_decay)
        if not 0 <= ema_decay < 1:
            raise ValueError(f"EDMTeacher: ema_decay must be in [0, 1), got {ema_decay!r}")
        backbone = from_spec(backbone)
        if backbone is not None and not isinstance(backbone, nn.Module):
            raise ValueError(f"EDMTeacher: backbone must be a network (e.g. MLPBackbone, UNetBackbone), got "
                             f"{backbone!r}")
        self.backbone = backbone if backbone is not None else MLPBackbone(dim=self.data_shape[0])
        self.spec_args["backbone"] = to_spec(self.backbone)
        self.ema = copy.deepcopy(self.backbone).requires_grad_(False)
        stat_shape = (self.data_shape[0],) + (1,) * (len(self.data_shape) - 1)
        self.register_buffer("data_mean", torch.zeros(stat_shape))
        self.register_buffer("data_std", torch.full(stat_shape, sigma_data))
        self.swd, self.field_residual = SlicedWassersteinDistance(), None

    # -- the teacher interface used by PID students -----------------------------------------------------------
    def denoise(self, x: Tensor, sigma: Tensor, ema: bool = True) -> Tensor:
        """D(x, sigma) in normalised units; x (B, *data_shape), sigma (B,) or a scalar."""
        sigma = sigma.to(x).expand(x.shape[0]) if torch.is_tensor(sigma) else torch.full((x.shape[0],), sigma).to(x)
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma.reshape(-1, *([1] * (x.ndim - 1))), self.sigma_data)
        net = self.ema if ema and self.ema_decay > 0 else self.backbone
        return c_skip * x + c_out * net(c_in * x, c_noise.flatten())

    # -- training ------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self.trainer is not None else None
        shape = getattr(datamodule, "data_shape", None)
        if shape is not None and tuple(shape) != self.data_shape:
            raise ValueError(f"EDMTeacher: data_shape {list(self.data_shape)} does not match the data's "
                             f"{list(shape)}")
        attach_field_residual(self, datamodule)
        if stage == "fit" and datamodule is not None and hasattr(datamodule, "normalization"):
            mean, std = datamodule.normalization()
            self.data_mean.copy_(mean.reshape(self.data_mean.shape))
            self.data_std.copy_(std.reshape(self.data_std.shape))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = self.from_data(batch[0])
        sigma = (self.p_mean + self.p_std * torch.randn(len(x), device=x.device)).exp()
        noisy = x + sigma.reshape(-1, *([1] * (x.ndim - 1))) * torch.randn_like(x)
        weight = (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2
        loss = (weight * ((self.denoise(noisy, sigma, ema=False) - x) ** 2).flatten(1).mean(1)).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"EDMTeacher: non-finite loss at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema_decay > 0:
            decay = min(self.ema_decay, (1 + self.global_step) / (10 + self.global_step))
            with torch.no_grad():
                for ema, live in zip(self.ema.parameters(), self.backbone.parameters()):
                    ema.lerp_(live, 1 - decay)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        generator = torch.Generator().manual_seed(batch_idx)
        validation_metrics(self, self.sample(len(batch[0]), generator=generator), batch[0])

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.backbone.parameters(), lr=self.lr)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_CLASS_KEY] = class_path(self)
