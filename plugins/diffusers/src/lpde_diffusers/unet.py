"""A diffusers ``UNet2DModel`` as the raw network F(x, c_noise) of an EDM denoiser, and as a PID / PIDDM teacher
(Karras et al. 2022, arXiv 2206.00364, Table 1: the preconditioning diffusers' ``EDMEulerScheduler`` applies)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from lightning_pde.diffusion.teachers import DenoiserTeacher, PreconditionedDenoiser
from lightning_pde.spec import Configurable, to_spec
from lightning_pde.validation import integer_list


def _build_unet(owner: str, unet: Any) -> nn.Module:
    """A UNet2DModel from itself, its config (a mapping) or a local directory written by ``save_pretrained``."""
    from diffusers import UNet2DModel  # here, not at import: the registry imports this module for every CLI run

    if isinstance(unet, UNet2DModel):
        return unet
    if isinstance(unet, dict):
        return UNet2DModel.from_config(unet)
    if isinstance(unet, (str, Path)):
        path = Path(unet)
        if not (path / "config.json").is_file():
            raise ValueError(f"{owner}: unet path {str(path)!r} is not a directory written by "
                             f"UNet2DModel.save_pretrained (no config.json there; nothing is downloaded: load a hub "
                             f"model with UNet2DModel.from_pretrained yourself and pass the model)")
        return UNet2DModel.from_pretrained(path, low_cpu_mem_usage=False)  # no `accelerate` warning
    raise ValueError(f"{owner}: unet must be a diffusers UNet2DModel, its config (a dict) or a directory saved with "
                     f"save_pretrained, got {type(unet).__name__}")


class DiffusersUNet(nn.Module, Configurable):
    """F(x, c_noise) = ``unet(x, c_noise).sample`` for an unconditional diffusers ``UNet2DModel``, the raw network of
    an EDM denoiser: the noise level enters as c_noise = ln(sigma) / 4 through the UNet's sinusoidal timestep
    embedding, as diffusers' ``EDMEulerScheduler.precondition_noise`` feeds it. Only ``time_embedding_type:
    positional`` takes such a real, possibly negative, c_noise (``fourier`` takes ln of it, ``learned`` integer
    steps), the UNet must have no class conditioning, and out_channels must equal in_channels. Checkpoints store the
    UNet's config (plain data); the weights travel in the state_dict.

    Args:
        unet: a ``UNet2DModel``, its config (``dict(unet.config)``), or a local directory saved with
            ``unet.save_pretrained(path)``.
    """

    def __init__(self, unet: Any = None) -> None:
        super().__init__()
        owner = type(self).__name__
        unet = _build_unet(owner, unet)
        config = unet.config
        if config.time_embedding_type != "positional":
            raise ValueError(f"{owner}: the UNet's time_embedding_type must be 'positional' (EDM's c_noise = ln(sigma)"
                             f" / 4 is a real number, possibly negative), got {config.time_embedding_type!r}")
        if config.num_class_embeds is not None or config.class_embed_type is not None:
            raise ValueError(f"{owner}: class-conditional UNets are not supported (num_class_embeds = "
                             f"{config.num_class_embeds!r}, class_embed_type = {config.class_embed_type!r})")
        if config.out_channels != config.in_channels:
            raise ValueError(f"{owner}: a denoiser's UNet returns what it takes: out_channels must equal in_channels "
                             f"= {config.in_channels}, got {config.out_channels}")
        self.unet = unet
        self.channels = int(config.in_channels)
        #: spatial sides must be multiples of this: every down block but the last halves them
        self.size_multiple = 2 ** (len(config.down_block_types) - 1)
        # the config, not the object or a path, is what a checkpoint keeps to rebuild this network; diffusers'
        # private entries ("_name_or_path", a Path; versions) are not needed by from_config
        self.__dict__["_init_args"]["unet"] = to_spec({k: v for k, v in config.items() if not k.startswith("_")})

    def check_input(self, x: Tensor) -> None:
        """A clear error for fields the UNet cannot take (diffusers would fail deep inside a concatenation)."""
        owner = type(self).__name__
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"{owner}: x must be (B, {self.channels}, H, W), got {tuple(x.shape)}")
        if x.shape[2] % self.size_multiple or x.shape[3] % self.size_multiple:
            raise ValueError(f"{owner}: the UNet halves H and W {int(math.log2(self.size_multiple))} times: they must "
                             f"be multiples of {self.size_multiple}, got {tuple(x.shape[2:])}")

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        self.check_input(x)
        return self.unet(x, c_noise.reshape(-1)).sample


class DiffusersTeacher(DenoiserTeacher):
    """A diffusers ``UNet2DModel`` trained with EDM preconditioning as a PID / PIDDM teacher:
    D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) with F = :class:`DiffusersUNet` and EDM's
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2), c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2),
    c_in = 1 / sqrt(sigma^2 + sigma_data^2), c_noise = ln(sigma) / 4 (arXiv 2206.00364, Table 1), which is
    ``EDMEulerScheduler(sigma_data=...).precondition_outputs(x, unet(precondition_inputs(x, sigma),
    precondition_noise(sigma)).sample, sigma)`` with the scheduler's default ``prediction_type="epsilon"``. A PID
    student's default network is a copy of the UNet (as PID does). A UNet trained as a DDPM noise predictor on integer
    timesteps is a different parametrisation and is not converted here.

    Args:
        unet: a ``UNet2DModel``, its config, or a local directory saved with ``save_pretrained`` (see
            :class:`DiffusersUNet`).
        data_shape: shape of one sample (default ``[in_channels, sample_size, sample_size]`` from the UNet's config).
        sigma_data, data_mean, data_std, sigma_min, sigma_max, rho, sample_steps: as in
            :class:`~lightning_pde.diffusion.teachers.DenoiserTeacher` (sigma_data: the value the UNet was trained
            with, diffusers' default 0.5).
    """

    def __init__(self, unet: Any = None, data_shape: list[int] | None = None, sigma_data: float = 0.5,
                 data_mean: float | list[float] = 0.0, data_std: float | list[float] | None = None,
                 sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0, sample_steps: int = 18) -> None:
        owner = type(self).__name__
        network = DiffusersUNet(unet)
        if data_shape is None:
            size = network.unet.config.sample_size
            sides = [size, size] if isinstance(size, int) else list(size)
            data_shape = [network.channels, *sides]
        data_shape = integer_list(owner, "data_shape", data_shape)
        if len(data_shape) != 3 or data_shape[0] != network.channels:
            raise ValueError(f"{owner}: data_shape must be [{network.channels}, H, W] (the UNet's in_channels "
                             f"first), got {data_shape}")
        if data_shape[1] % network.size_multiple or data_shape[2] % network.size_multiple:
            raise ValueError(f"{owner}: data_shape's H and W must be multiples of {network.size_multiple} (the UNet "
                             f"halves them {int(math.log2(network.size_multiple))} times), got {data_shape}")
        super().__init__(PreconditionedDenoiser(network, sigma_data=sigma_data), data_shape=data_shape,
                         sigma_data=sigma_data, data_mean=data_mean, data_std=data_std, sigma_min=sigma_min,
                         sigma_max=sigma_max, rho=rho, sample_steps=sample_steps)
        self.__dict__["_init_args"]["unet"] = network.init_args["unet"]

    @property
    def unet(self) -> nn.Module:
        """The wrapped ``UNet2DModel``."""
        return self.denoiser.backbone.unet
