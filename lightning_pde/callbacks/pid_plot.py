"""Pictures of generated samples for EDM teachers and PID/PIDDM students."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from lightning_pde.spec import Configurable
from lightning_pde.validation import nonempty_str, positive_int


def plot_samples(samples: torch.Tensor, reference: torch.Tensor | None, path: str | Path, title: str = "") -> Path:
    """Save a picture of `samples`: for 2-D vectors a scatter over the reference data; for (B, 2, n, n) fields a grid
    with one column per sample and rows a, u and the residual map -Lap_h u - a. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lightning_pde.data.poisson_fields import poisson_residual

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples.detach().cpu().float()
    if samples.ndim == 2:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        if reference is not None:
            ref = reference.cpu()
            ax.scatter(ref[:, 0], ref[:, 1], s=2, alpha=0.3, c="tab:gray", label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, c="tab:red", label="samples")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", markerscale=4)
    else:
        count = min(len(samples), 6)
        residual = poisson_residual(samples[:count].double()).float()
        fig, axes = plt.subplots(3, count, figsize=(1.9 * count, 5.6), squeeze=False)
        for j in range(count):
            scale = float(samples[j, 0].abs().max())
            for i, (image, name) in enumerate(((samples[j, 0], "a"), (samples[j, 1], "u"),
                                              (residual[j], "-Lap u - a"))):
                ax = axes[i, j]
                kwargs = {"vmin": -scale, "vmax": scale} if i == 2 else {}
                ax.imshow(image, cmap="RdBu_r" if i != 1 else "viridis", **kwargs)
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(name)
            axes[2, j].set_title(f"|r|/|a|={float(residual[j].norm() / samples[j, 0].norm()):.2g}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class PIDSamplePlot(pl.Callback, Configurable):
    """At the end of fitting (rank 0), draw samples with ``module.sample`` and save :func:`plot_samples`' picture.

    Args:
        path: where to save the PNG; a relative path is under the run's log directory (``trainer.log_dir``), so a
            run never writes into the working directory.
        n_samples: samples drawn (vectors; fields show at most 6).
        seed: seed of the sample noise.
    """

    def __init__(self, path: str = "samples.png", n_samples: int = 2000, seed: int = 0) -> None:
        self.path = nonempty_str("PIDSamplePlot", "path", path)
        self.n_samples = positive_int("PIDSamplePlot", "n_samples", n_samples)
        self.seed = seed
        #: where the last picture was written (None until fit has ended on rank 0)
        self.written: Path | None = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # trainer.log_dir is a broadcast under DDP: every rank asks for it, before rank 0 goes on alone
        log_dir = trainer.log_dir
        if not trainer.is_global_zero or not hasattr(pl_module, "sample"):
            return
        path = Path(self.path)
        if not path.is_absolute():
            path = Path(log_dir or trainer.default_root_dir) / path
        samples = pl_module.sample(self.n_samples, generator=torch.Generator().manual_seed(self.seed))
        reference = getattr(trainer.datamodule, "val", None) if trainer.datamodule is not None else None
        self.written = plot_samples(samples, reference, path, title=type(pl_module).__name__)
        rank_zero_info(f"PIDSamplePlot: wrote {self.written}")

    def state_dict(self) -> dict[str, Any]:
        return {}
