"""EDM diffusion building blocks (Karras et al. 2022, arXiv 2206.00364): preconditioning, the Karras noise grid,
Euler/Heun probability-flow samplers, small backbones (MLP for vectors, U-Net for fields) and an exact Gaussian-mixture
denoiser. Every backbone is called as ``F(x, c_noise)`` with x shaped like the data and c_noise shaped (B,)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightning_pde.spec import Configurable
from lightning_pde.validation import integer_list, positive_float, positive_int

Denoiser = Callable[[Tensor, Tensor], Tensor]


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """The n-point grid t_i = (s_max^(1/rho) + i/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho, descending
    (arXiv 2206.00364, Eq. 5); t_0 = sigma_max, t_{n-1} = sigma_min. Float64."""
    if n < 2:
        raise ValueError(f"karras_sigmas: n must be an integer >= 2, got {n!r}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    try:
        lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    except OverflowError:  # a tiny rho: sigma ** (1 / rho) leaves float range
        lo = hi = math.inf
    sigmas = (hi + ramp * (lo - hi)) ** rho
    if not torch.isfinite(sigmas).all() or not math.isfinite(hi):
        raise ValueError(f"karras_sigmas: rho = {rho!r} gives a non-finite grid between sigma_min = {sigma_min!r} and "
                         f"sigma_max = {sigma_max!r}; EDM uses rho = 7")
    return sigmas


def edm_scalings(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """c_skip, c_out, c_in, c_noise of EDM preconditioning (arXiv 2206.00364, Table 1)."""
    total = sigma**2 + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / total.sqrt(), 1 / total.sqrt(), sigma.log() / 4


def _expand(sigma: Tensor, x: Tensor) -> Tensor:
    sigma = sigma.to(x) if torch.is_tensor(sigma) else torch.tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(x.shape[0])
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


@torch.no_grad()
def heun_sample(denoiser: Denoiser, z: Tensor, sigmas: Tensor, heun: bool = True) -> Tensor:
    """Integrate dx/dt = (x - D(x, t)) / t from x(t_0) = z through `sigmas` and then to t = 0 (arXiv 2206.00364,
    Algorithm 1 without stochasticity): a Heun step on every interval except the last one to 0, which is Euler.
    `heun=False` gives Euler steps throughout. Uses 2 len(sigmas) - 1 denoiser calls with Heun."""
    grid = [float(s) for s in sigmas] + [0.0]
    x = z
    for t, t_next in zip(grid[:-1], grid[1:]):
        slope = (x - denoiser(x, _expand(torch.tensor(t), x).flatten())) / t
        x_next = x + (t_next - t) * slope
        if heun and t_next > 0:
            slope_next = (x_next - denoiser(x_next, _expand(torch.tensor(t_next), x).flatten())) / t_next
            x_next = x + (t_next - t) * (slope + slope_next) / 2
        x = x_next
    return x


class NoiseEmbedding(nn.Module):
    """Fixed sinusoidal features of c_noise followed by a two-layer SiLU MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0, math.log(100.0), dim // 2)), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * (dim // 2), dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c_noise: Tensor) -> Tensor:
        angles = c_noise[:, None] * self.freqs
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))


class MLPBackbone(nn.Module, Configurable):
    """MLP for flat vectors: ``F(x, c_noise)``, SiLU activations. The first layer is the sum of separate linear maps
    of x and of the noise features: one layer on their concatenation gives x's few columns the 1/sqrt(dim +
    embedding_dim) initial scale of the wide embedding's and trains very slowly (2-D x with a 64-wide embedding could
    not fit sin(3 x_1) in 400 Adam steps, nor an EDM teacher of the 2-D mixture in 6000).

    Args:
        dim: data dimension (x is (B, dim)).
        hidden: width of each hidden layer, e.g. ``[256, 256, 256]``.
        embedding_dim: width of the noise embedding.
    """

    def __init__(self, dim: int = 2, hidden: list[int] | None = None, embedding_dim: int = 64) -> None:
        super().__init__()
        self.dim = positive_int("MLPBackbone", "dim", dim)
        hidden = integer_list("MLPBackbone", "hidden", [256, 256, 256] if hidden is None else hidden)
        embedding_dim = positive_int("MLPBackbone", "embedding_dim", embedding_dim)
        self.embed = NoiseEmbedding(embedding_dim)
        self.inp, self.inp_noise = nn.Linear(dim, hidden[0]), nn.Linear(embedding_dim, hidden[0], bias=False)
        layers, width = [nn.SiLU()], hidden[0]
        for size in hidden[1:]:
            layers += [nn.Linear(width, size), nn.SiLU()]
            width = size
        self.body = nn.Sequential(*layers, nn.Linear(width, dim))

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        return self.body(self.inp(x) + self.inp_noise(self.embed(c_noise)))


class _ResBlock(nn.Module):
    """Two 3x3 convolutions with a FiLM (scale, shift) from the noise embedding, residual connection."""

    def __init__(self, c_in: int, c_out: int, emb: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.film = nn.Linear(emb, 2 * c_out)
        self.norm1, self.norm2 = nn.GroupNorm(min(8, c_in), c_in), nn.GroupNorm(min(8, c_out), c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(nn.functional.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class UNetBackbone(nn.Module, Configurable):
    """A two-level U-Net for (B, channels, n, n) fields, n even: residual FiLM blocks at n and n/2, average-pool down,
    nearest-neighbour up, skip connection by concatenation.

    Args:
        channels: field channels (2 for (a, u)).
        width: feature channels at full resolution (twice that at half resolution).
        embedding_dim: width of the noise embedding.
    """

    def __init__(self, channels: int = 2, width: int = 32, embedding_dim: int = 64) -> None:
        super().__init__()
        self.channels = positive_int("UNetBackbone", "channels", channels)
        w = positive_int("UNetBackbone", "width", width)
        if w % 8:  # the blocks normalise 3 * width channels in 8 groups
            raise ValueError(f"UNetBackbone: width must be a multiple of 8, got {width!r}")
        e = positive_int("UNetBackbone", "embedding_dim", embedding_dim)
        self.embed = NoiseEmbedding(e)
        self.inp = nn.Conv2d(channels, w, 3, padding=1)
        self.down1, self.down2 = _ResBlock(w, w, e), _ResBlock(w, 2 * w, e)
        self.mid = _ResBlock(2 * w, 2 * w, e)
        self.up1, self.up2 = _ResBlock(3 * w, w, e), _ResBlock(w, w, e)
        self.out = nn.Conv2d(w, channels, 3, padding=1)

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"UNetBackbone: field sides must be even, got {tuple(x.shape[-2:])}")
        emb = self.embed(c_noise)
        h1 = self.down1(self.inp(x), emb)
        h2 = self.mid(self.down2(nn.functional.avg_pool2d(h1, 2), emb), emb)
        h = self.up1(torch.cat([nn.functional.interpolate(h2, scale_factor=2.0), h1], 1), emb)
        return self.out(self.up2(h, emb))


class GaussianMixtureDenoiser(nn.Module, Configurable):
    """Exact EDM denoiser D(x, sigma) = E[x_0 | x_0 + sigma n = x] of an isotropic Gaussian mixture with equal
    weights: sum_k w_k(x) (mu_k + s^2 / (s^2 + sigma^2) (x - mu_k)), w_k proportional to N(x; mu_k, (s^2 + sigma^2) I).
    Defaults are the data of :class:`~lightning_pde.data.GaussianMixture2D` (docs/design.md). Usable as a PID teacher:
    it has the teacher interface (``denoise``, ``data_shape``, ``sigma_data``, ``to_data``, ``sample``).

    Args:
        n_components: number of means, equally spaced on a circle.
        radius: radius of that circle.
        std: standard deviation s of every component.
    """

    def __init__(self, n_components: int = 8, radius: float = 2.0, std: float = 0.1) -> None:
        super().__init__()
        k = positive_int("GaussianMixtureDenoiser", "n_components", n_components)
        # bounded so that squared distances stay finite in float32
        self.radius = positive_float("GaussianMixtureDenoiser", "radius", radius, maximum=1e6)
        self.std = positive_float("GaussianMixtureDenoiser", "std", std, maximum=1e6)
        angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
        self.register_buffer("means", radius * torch.stack([angles.cos(), angles.sin()], 1).float())
        self.data_shape = (2,)
        self.sigma_data = math.sqrt(radius**2 / 2 + std**2)  # per-coordinate standard deviation of the data
        self.sigma_min, self.sigma_max, self.rho, self.sample_steps = 0.002, 80.0, 7.0, 35

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        var = self.std**2 + _expand(sigma, x) ** 2  # (B, 1)
        diff = x[:, None, :] - self.means  # (B, K, 2)
        logits = -(diff**2).sum(-1) / (2 * var)
        weights = torch.softmax(logits, dim=1)
        shrunk = self.means + (self.std**2 / var)[:, :, None] * diff
        return (weights[:, :, None] * shrunk).sum(1)

    forward = denoise

    def to_data(self, x: Tensor) -> Tensor:
        return x

    def from_data(self, x: Tensor) -> Tensor:
        return x

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        steps = self.sample_steps if steps is None else positive_int("GaussianMixtureDenoiser", "steps", steps)
        z = self.sigma_max * torch.randn(n, 2, generator=generator).to(self.means)
        sigmas = karras_sigmas(max(steps, 2), self.sigma_min, self.sigma_max, self.rho)
        return heun_sample(self.denoise, z, sigmas)

    def sample_data(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n exact draws from the mixture."""
        index = torch.randint(len(self.means), (n,), generator=generator)
        return self.means[index] + self.std * torch.randn(n, 2, generator=generator).to(self.means)


class TeacherSampling:
    """What every teacher does the same way (EDMTeacher, DenoiserTeacher): convert between data units and the
    model's normalised units, and sample with Heun's method on a Karras grid. The class provides `denoise(x, sigma)`,
    `data_mean`, `data_std`, `sigma_data`, `data_shape`, `sigma_min`, `sigma_max`, `rho` and `sample_steps`."""

    def to_data(self, x: Tensor) -> Tensor:
        return self.data_mean + x * (self.data_std / self.sigma_data)

    def from_data(self, x: Tensor) -> Tensor:
        return (x - self.data_mean) * (self.sigma_data / self.data_std)

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n samples in data units from the Heun sampler with `steps` Karras grid points (default sample_steps)."""
        from lightning_pde.validation import integer_at_least

        n = integer_at_least(type(self).__name__, "n", n, 1)
        steps = self.sample_steps if steps is None else integer_at_least(type(self).__name__, "steps", steps, 2)
        z = self.sigma_max * torch.randn(n, *self.data_shape, generator=generator).to(self.data_mean)
        return self.to_data(heun_sample(self.denoise, z, karras_sigmas(steps, self.sigma_min, self.sigma_max,
                                                                          self.rho)))
