"""PIDDM (Zhang & Zou, arXiv 2505.22391): a one-step student distilled from a diffusion teacher over joint PDE fields
(a, u), trained on teacher ODE outputs plus the PDE residual of its own samples; forward and inverse problems by
latent optimisation with observation masks (the paper's Eq. 8 and Algorithm 3; the paper's code is not public, so
the method follows the ICLR 2026 reviews that quote them: docs/pid.md, "Sources")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_pde.data.darcy import darcy_fields_residual
from lightning_pde.data.poisson_fields import poisson_residual
from lightning_pde.diffusion import edm_scalings, heun_sample, karras_sigmas
from lightning_pde.modules.pid import PIDStudent, distance
from lightning_pde.validation import integer_at_least, nonnegative_float, positive_float, positive_int

#: residual operator of fields (B, 2, n, n) in data units
RESIDUALS = {"poisson": poisson_residual, "darcy": darcy_fields_residual}
PARAMETRIZATIONS = ("denoiser", "pid")


class PIDDM(PIDStudent):
    """One-step field generator x = d(eps) from noise z = sigma_max eps, trained with::

        loss = d(d(eps), Phi(eps)) + lam(step) * mean(R(d(eps))^2) / scale^2

    where Phi(eps) is the teacher's deterministic Heun solution from the same noise (pairs made once per
    `refresh_every` epochs, `n_pairs` per rank, seeds distinct per rank) and R the PDE residual in data units,
    divided by the size of the equation's right-hand side so the term is the squared relative residual whatever the
    grid spacing (a second-difference operator scales with h^-2):

    - ``poisson``: -Lap_h u - a with the 5-point operator of :class:`~lightning_pde.data.PoissonFields`, over the
      data's rms of a;
    - ``darcy``: -div_h(K grad_h p) - 1 with the finite-volume operator of :class:`~lightning_pde.data.DarcyFlow`
      (channel 0 = K, channel 1 = p; K floored at 1e-3), over the source f = 1. Bilinear in (K, p): the case where
      a penalty on a posterior mean would carry a Jensen gap.

    The residual acts on the final sample, not on a posterior mean, so there is no Jensen gap (arXiv 2505.22391,
    Eq. 8). Conditioning: :meth:`solve` and ``sample(n, condition=(mask, values))`` (forward: observe channel 0;
    inverse: observe channel 1).

    Student d (``parametrization``):

    - ``denoiser`` (default): the teacher's own preconditioned network at the top noise level,
      d(eps) = c_skip(T) z + c_out(T) F(c_in(T) z, c_noise(T)) with EDM's scalings and T = sigma_max. Initialised
      from the teacher's weights it starts as the teacher's one-step prediction D(z, T), a smooth field near the data
      mean, which the distillation term then sharpens.
    - ``pid``: the PID trajectory network read at sigma_min, x_theta(z, sigma_min) (:class:`PIDStudent`). With the
      teacher's weights it starts far from the data: F at c_noise(sigma_min) is the teacher's noise-prediction head,
      not a sample (on Poisson n=16 the initial samples' relative residual is about 40).

    The physics weight rises linearly from 0 to `lam` over the first `lam_warmup` steps. A full weight from step 0
    pulls the one-step generator to the trivial zero residual of shrunken fields (a = u = 0 solves the PDE) before
    the distillation term has fitted the teacher; warmed up, it only removes the small high-frequency residual left
    by the fitted student (benchmarks/RESULTS.md, PID section).

    Args:
        teacher, backbone, data_shape, sigma_min, sigma_max, rho, distance, batch_size, lr, cosine, seed: as in
            :class:`PIDStudent` (the default backbone is a copy of the teacher's network).
        lam: weight of the PDE residual term.
        lam_warmup: steps over which the weight of the residual term rises linearly from 0 to `lam` (0: none).
        parametrization: the one-step student, ``denoiser`` or ``pid`` (see above).
        residual: the PDE of the fields, ``poisson`` or ``darcy``.
        n_pairs: teacher (noise, sample) pairs per rank.
        teacher_steps: Karras grid points of the teacher's Heun solves.
        refresh_every: draw new pairs every this many epochs (0: never).
    """

    def __init__(self, teacher: str | nn.Module | dict | None = None, backbone: nn.Module | None = None,
                 data_shape: list[int] | None = None, lam: float = 1.0, lam_warmup: int = 0,
                 parametrization: str = "denoiser", residual: str = "poisson",
                 n_pairs: int = 2000, teacher_steps: int = 18, refresh_every: int = 0, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0, distance: str = "l2", batch_size: int = 64,
                 lr: float = 2e-4, cosine: bool = False, seed: int = 0) -> None:
        super().__init__(teacher=teacher, backbone=backbone, data_shape=data_shape, n_grid=teacher_steps,
                         sigma_min=sigma_min, sigma_max=sigma_max, rho=rho, distance=distance,
                         batch_size=batch_size, lr=lr, cosine=cosine, seed=seed)
        self.lam = nonnegative_float("PIDDM", "lam", lam)
        self.lam_warmup = integer_at_least("PIDDM", "lam_warmup", lam_warmup, 0)
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"PIDDM: parametrization must be one of {PARAMETRIZATIONS}, got {parametrization!r}")
        self.parametrization = parametrization
        if residual not in RESIDUALS:
            raise ValueError(f"PIDDM: residual must be one of {sorted(RESIDUALS)}, got {residual!r}")
        if len(self.data_shape) != 3 or self.data_shape[0] != 2:
            raise ValueError(f"PIDDM: the teacher must generate (2, n, n) fields (a, u), got shape "
                             f"{list(self.data_shape)}")
        self.residual, self.residual_name = RESIDUALS[residual], residual
        self.n_pairs = positive_int("PIDDM", "n_pairs", n_pairs)
        self.teacher_steps = integer_at_least("PIDDM", "teacher_steps", teacher_steps, 2)
        self.refresh_every = integer_at_least("PIDDM", "refresh_every", refresh_every, 0)
        self.pairs: tuple[Tensor, Tensor] | None = None

    def generate(self, z: Tensor) -> Tensor:
        """One-step samples d(z / sigma_max) in normalised units from noise z ~ N(0, sigma_max^2 I)."""
        if self.parametrization == "pid":
            return super().generate(z)
        sigma = torch.full((len(z),) + (1,) * (z.ndim - 1), self.sigma_max, device=z.device, dtype=z.dtype)
        c_skip, c_out, c_in, c_noise = edm_scalings(sigma, self.sigma_data)
        return c_skip * z + c_out * self.backbone(c_in * z, c_noise.flatten())

    def setup(self, stage: str) -> None:
        super().setup(stage)
        pde = getattr(getattr(self.trainer, "datamodule", None), "pde", None)
        if pde is not None and pde != self.residual_name:
            raise ValueError(f"PIDDM: residual={self.residual_name!r} but the data module's fields are {pde!r} "
                             f"fields; set --model.residual={pde}")

    def physics_weight(self, step: int) -> float:
        """lam, ramped linearly from 0 over the first `lam_warmup` steps."""
        return self.lam * min(1.0, step / self.lam_warmup) if self.lam_warmup else self.lam

    def physics_loss(self, x: Tensor) -> Tensor:
        """mean(R(x)^2) / scale^2 for normalised samples x: scale = rms(a) from the teacher's data statistics
        (Poisson), or the source f = 1 (Darcy)."""
        residual = self.residual(self.teacher.to_data(x))
        if self.residual_name == "darcy":
            return (residual**2).mean()
        a_scale = self.teacher.to_data(torch.ones_like(x[:1])) - self.teacher.to_data(torch.zeros_like(x[:1]))
        a_rms = float(a_scale[0, 0].mean()) * self.sigma_data
        return (residual**2).mean() / a_rms**2

    @torch.no_grad()
    def make_pairs(self) -> None:
        z = self.noise(self.n_pairs)
        sigmas = karras_sigmas(self.teacher_steps, self.sigma_min, self.sigma_max, self.rho)
        chunks = [heun_sample(self.teacher.denoise, part, sigmas) for part in z.split(500)]
        self.pairs = (z, torch.cat(chunks))

    def on_train_epoch_start(self) -> None:
        if self.pairs is None or (self.refresh_every and self.current_epoch % self.refresh_every == 0
                                  and self.current_epoch > 0):
            self.make_pairs()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        z, target = self.pairs
        pick = torch.randint(len(z), (self.batch_size,), generator=self._noise).to(z.device)
        x = self.generate(z[pick])
        distill = distance(self.distance, x, target[pick]).mean()
        physics = self.physics_loss(x)
        weight = self.physics_weight(self.global_step)
        loss = distill + weight * physics
        if not torch.isfinite(loss):
            raise FloatingPointError(f"PIDDM: non-finite loss at step {self.global_step}")
        self.log_dict({"train/loss": loss, "train/distill": distill, "train/physics": physics}, prog_bar=True)
        self.log("train/lam", weight)
        return loss

    def check_observation(self, owner: str, observed: Any, mask: Any) -> tuple[Tensor, Tensor]:
        """Observed fields (B, *data_shape), finite, and a mask of 0s and 1s broadcastable to them."""
        shape = list(self.data_shape)
        if not torch.is_tensor(observed) or observed.ndim != len(shape) + 1 or list(observed.shape[1:]) != shape:
            got = list(observed.shape) if torch.is_tensor(observed) else type(observed).__name__
            raise ValueError(f"{owner}: observed values must be a tensor (B, {', '.join(map(str, shape))}) in data "
                             f"units, got {got}")
        if not torch.is_tensor(mask):
            raise ValueError(f"{owner}: mask must be a tensor of 0s and 1s, got {type(mask).__name__}")
        try:
            broadcast = torch.broadcast_shapes(mask.shape, observed.shape)
        except RuntimeError:
            broadcast = None
        if broadcast != observed.shape:
            raise ValueError(f"{owner}: mask of shape {list(mask.shape)} does not broadcast to the observed values' "
                             f"{list(observed.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{owner}: mask must hold only 0 (free) and 1 (observed), got values "
                             f"{mask.unique()[:6].tolist()}")
        if not bool((torch.isfinite(observed) | (mask == 0)).all()):
            raise ValueError(f"{owner}: observed values must be finite where the mask is 1")
        return torch.nan_to_num(observed) * mask, mask  # unobserved entries (NaN allowed) are never read

    def sample(self, n: int, steps: int | None = None, generator: torch.Generator | None = None,
               condition: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """n one-step samples in data units; with ``condition=(mask, values)``, n fields that keep `values` where
        `mask` is 1 and generate the rest by :meth:`solve` (forward problem: mask on channel 0; inverse: channel 1;
        or any pixels). `values` (n, *data_shape) in data units; `mask` broadcastable to it."""
        if condition is None:
            return super().sample(n, steps, generator)
        if not isinstance(condition, (tuple, list)) or len(condition) != 2:
            raise ValueError(f"PIDDM.sample: condition must be a pair (mask, values), got {type(condition).__name__}")
        mask, values = condition
        values, mask = self.check_observation("PIDDM.sample", values, mask)
        if len(values) != n:
            raise ValueError(f"PIDDM.sample: n = {n} but the condition holds {len(values)} fields")
        return self.solve(values, mask, generator=generator)

    def solve(self, observed: Tensor, mask: Tensor, steps: int = 300, lr: float = 0.05, lam: float = 1.0,
              generator: torch.Generator | None = None) -> Tensor:
        """Complete partially observed fields (Algorithm 3): minimise over eps
        ||(d(eps) - x') * M||^2 + lam * residual(x_mix) with x_mix = x' M + d(eps) (1 - M), in normalised units;
        returns x_mix in data units. Forward problem: M = 1 on channel a; inverse problem: M = 1 on channel u.

        Args:
            observed: fields (B, 2, n, n) in data units (unobserved entries are ignored).
            mask: same shape (or broadcastable), 1 where observed, 0 elsewhere.
            steps: Adam steps on eps.
            lr: Adam learning rate.
            lam: weight of the residual term.
            generator: seed source of the initial eps.
        """
        steps = positive_int("PIDDM.solve", "steps", steps)
        lr, lam = positive_float("PIDDM.solve", "lr", lr), nonnegative_float("PIDDM.solve", "lam", lam)
        observed, mask = self.check_observation("PIDDM.solve", observed, mask)
        target = self.teacher.from_data(observed.to(self.sigmas))
        mask = mask.to(target).expand_as(target)
        eps = torch.randn(target.shape, generator=generator).to(target).requires_grad_(True)
        optimizer = torch.optim.Adam([eps], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                x = self.generate(self.sigma_max * eps)
                mixed = target * mask + x * (1 - mask)
                loss = (((x - target) * mask) ** 2).mean() + lam * self.physics_loss(mixed)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            x = self.generate(self.sigma_max * eps)
            return self.teacher.to_data(target * mask + x * (1 - mask))
