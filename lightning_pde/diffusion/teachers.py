"""Teachers the project did not train: any denoiser D(x, sigma) behind the teacher interface PID and PIDDM students
use (``denoise``, ``to_data``, ``from_data``, ``data_shape``, ``sigma_data``, ``sample``), and EDM preconditioning
around a raw network F(x, c_noise) (Karras et al. 2022, arXiv 2206.00364, Table 1)."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from lightning_pde.diffusion import TeacherSampling, edm_scalings
from lightning_pde.spec import Configurable, from_spec, to_spec
from lightning_pde.validation import integer_at_least, integer_list, positive_float


def check_sigma(owner: str, sigma: Any, x: Tensor) -> Tensor:
    """sigma as a (B,) tensor on x's device and dtype: a number, a 0-d tensor or a (B,) tensor of finite values
    > 0 (B = len(x))."""
    if isinstance(sigma, numbers.Real) and not isinstance(sigma, bool):
        sigma = torch.tensor(float(sigma))
    if not torch.is_tensor(sigma) or sigma.ndim > 1 or (sigma.ndim == 1 and len(sigma) != len(x)):
        shape = tuple(sigma.shape) if torch.is_tensor(sigma) else type(sigma).__name__
        raise ValueError(f"{owner}: sigma must be a number or a tensor of shape () or ({len(x)},) (one noise level "
                         f"per sample), got {shape}")
    sigma = sigma.to(device=x.device, dtype=x.dtype)
    if not bool(torch.isfinite(sigma).all()) or not bool((sigma > 0).all()):
        raise ValueError(f"{owner}: sigma must be finite and > 0, got {sigma.flatten()[:4].tolist()}")
    return sigma.expand(len(x)) if sigma.ndim == 0 else sigma


class PreconditionedDenoiser(nn.Module, Configurable):
    """D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma)) with EDM's
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2), c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2),
    c_in = 1 / sqrt(sigma^2 + sigma_data^2), c_noise = ln(sigma) / 4 (arXiv 2206.00364, Table 1; the same as
    :class:`~lightning_pde.modules.edm.EDMTeacher` and diffusers' ``EDMEulerScheduler.precondition_*``).

    Args:
        backbone: the raw network F, called as ``F(x, c_noise)`` with x (B, ...) and c_noise (B,).
        sigma_data: standard deviation of the data the network was trained on.
    """

    def __init__(self, backbone: nn.Module, sigma_data: float = 0.5) -> None:
        super().__init__()
        backbone = from_spec(backbone)
        if not isinstance(backbone, nn.Module):
            raise ValueError(f"PreconditionedDenoiser: backbone must be a network F(x, c_noise) (torch.nn.Module), "
                             f"got {type(backbone).__name__}")
        self.backbone = backbone
        self.sigma_data = positive_float("PreconditionedDenoiser", "sigma_data", sigma_data, maximum=1e6)

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        """D(x, sigma); x (B, ...), sigma a number or (B,)."""
        sigma = check_sigma("PreconditionedDenoiser", sigma, x)
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma.reshape(-1, *([1] * (x.ndim - 1))), self.sigma_data)
        return c_skip * x + c_out * self.backbone(c_in * x, c_noise.flatten())


def _per_channel(owner: str, name: str, value: Any, channels: int) -> list[float]:
    values = [value] * channels if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
    if not isinstance(values, (list, tuple)) or len(values) != channels or any(
            isinstance(v, bool) or not isinstance(v, numbers.Real) or not torch.isfinite(torch.tensor(float(v)))
            for v in values):
        raise ValueError(f"{owner}: {name} must be a finite number or a list of {channels} finite numbers (one per "
                         f"channel), got {value!r}")
    return [float(v) for v in values]


class DenoiserTeacher(TeacherSampling, nn.Module, Configurable):
    """Any denoiser as a PID / PIDDM teacher: ``denoiser(x, sigma)`` returns the estimate of the clean sample
    E[x_0 | x_0 + sigma n = x] for x (B, *data_shape) and sigma (B,), in the units the denoiser was trained in (the
    "normalised" units of the students). Its probability-flow ODE is dx/dt = (x - D(x, t)) / t (EDM form); `sample`
    integrates it with Heun steps on the Karras grid. Every call is checked: x's shape, sigma (finite, > 0, one per
    sample), and the denoiser's answer (a tensor shaped like x).

    A student's default network is a copy of the teacher's raw network: that is ``denoiser.backbone`` when the
    denoiser is a :class:`PreconditionedDenoiser` (or anything with a ``backbone`` F(x, c_noise)); for a bare function
    pass the student a ``backbone``. Checkpoints store the teacher as a spec: a denoiser that is a
    :class:`~lightning_pde.spec.Configurable` module rebuilds from it (its weights travel in the student's
    state_dict); a plain function cannot be stored (a warning says so), and a student checkpoint holding it must be
    loaded with the teacher passed again.

    Args:
        denoiser: the callable D(x, sigma), a module, or the spec of one.
        data_shape: shape of one sample, e.g. ``[2, 32, 32]``.
        sigma_data: standard deviation of the data in the denoiser's units (students scale their noise input by
            1 / sqrt(sigma_data^2 + sigma_max^2)).
        data_mean: per-channel mean (a number or one per channel) of the data in data units.
        data_std: per-channel standard deviation in data units (default sigma_data): data = data_mean + x data_std /
            sigma_data, so the defaults make the denoiser's units the data units.
        sigma_min: smallest noise level of the sampler.
        sigma_max: largest noise level (the prior is N(0, sigma_max^2 I)).
        rho: exponent of the Karras grid.
        sample_steps: Karras grid points of the Heun sampler used by `sample`.
    """

    def __init__(self, denoiser: Callable[[Tensor, Tensor], Tensor] | dict | None = None,
                 data_shape: list[int] | None = None, sigma_data: float = 0.5,
                 data_mean: float | list[float] = 0.0, data_std: float | list[float] | None = None,
                 sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                 sample_steps: int = 18) -> None:
        super().__init__()
        owner = type(self).__name__
        denoiser = from_spec(denoiser)
        if denoiser is None or not callable(denoiser):
            raise ValueError(f"{owner}: denoiser must be a callable D(x, sigma) returning the denoised x (a function, "
                             f"a torch.nn.Module or its spec), got {denoiser!r}; a student checkpoint whose teacher "
                             f"wrapped a plain function does not store it: load it with the teacher passed again")
        self.denoiser = denoiser
        if data_shape is None:
            raise ValueError(f"{owner}: data_shape is required (the shape of one sample, e.g. [2, 32, 32])")
        self.data_shape = tuple(integer_list(owner, "data_shape", data_shape))
        self.sigma_data = positive_float(owner, "sigma_data", sigma_data, maximum=1e6)
        self.sigma_min = positive_float(owner, "sigma_min", sigma_min)
        self.sigma_max = positive_float(owner, "sigma_max", sigma_max)
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"{owner}: sigma_max must be > sigma_min = {sigma_min}, got {sigma_max!r}")
        self.rho = positive_float(owner, "rho", rho)
        self.sample_steps = integer_at_least(owner, "sample_steps", sample_steps, 2)
        channels = self.data_shape[0]
        mean = _per_channel(owner, "data_mean", data_mean, channels)
        std = _per_channel(owner, "data_std", self.sigma_data if data_std is None else data_std, channels)
        if min(std) <= 0:
            raise ValueError(f"{owner}: data_std must be > 0, got {data_std!r}")
        stat_shape = (channels,) + (1,) * (len(self.data_shape) - 1)
        self.register_buffer("data_mean", torch.tensor(mean).reshape(stat_shape))
        self.register_buffer("data_std", torch.tensor(std).reshape(stat_shape))
        recorded = self.__dict__.get("_init_args", {})
        if "denoiser" in recorded:
            try:
                to_spec(recorded["denoiser"])
            except TypeError:
                # A function cannot be rebuilt from plain data: record None, so a student holding this teacher still
                # checkpoints, and loading it says to pass the teacher again.
                warnings.warn(f"{owner}: the denoiser {type(denoiser).__name__} cannot be stored in a checkpoint "
                              f"spec (it is not a lightning_pde.spec.Configurable module); a checkpoint of a student "
                              f"distilled from it must be loaded with the teacher passed again", stacklevel=2)
                recorded["denoiser"] = None

    @property
    def backbone(self) -> nn.Module | None:
        """The denoiser's raw network F(x, c_noise), if it has one (a student's default starting point)."""
        backbone = getattr(self.denoiser, "backbone", None)
        return backbone if isinstance(backbone, nn.Module) else None

    def denoise(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """D(x, sigma) in normalised units; x (B, *data_shape), sigma a number or (B,)."""
        owner = type(self).__name__
        if not torch.is_tensor(x) or x.ndim != len(self.data_shape) + 1 or tuple(x.shape[1:]) != self.data_shape:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{owner}: x must be (B, {', '.join(map(str, self.data_shape))}), got {shape}")
        sigma = check_sigma(owner, sigma, x)
        denoised = self.denoiser(x, sigma)
        if not torch.is_tensor(denoised) or denoised.shape != x.shape:
            shape = tuple(denoised.shape) if torch.is_tensor(denoised) else type(denoised).__name__
            raise ValueError(f"{owner}: the denoiser must return a tensor shaped like x {tuple(x.shape)}, got {shape}")
        return denoised

    forward = denoise


