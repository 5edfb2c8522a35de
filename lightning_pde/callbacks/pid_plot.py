"""Pictures of generated samples for EDM teachers and PID/PIDDM students."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from lightning_pde.spec import Configurable
from lightning_pde.validation import nonempty_str, positive_int


def _residual_map(pde: str):
    """Channel names, the residual map's name and the map itself (fields in data units) of a PDE's joint fields."""
    from lightning_pde.data.darcy import darcy_fields_residual
    from lightning_pde.data.poisson_fields import poisson_residual

    return {"poisson": (("a", "u"), "-Lap u - a", poisson_residual),
            "darcy": (("K", "p"), "-div(K grad p) - 1", darcy_fields_residual)}[pde]


def plot_samples(samples: torch.Tensor, reference: torch.Tensor | None, path: str | Path, title: str = "",
                 pde: str | None = "poisson") -> Path:
    """Save a picture of `samples`: for 2-D vectors a scatter over the reference data; for (B, C, n, n) fields a grid
    with one column per sample and one row per channel (one-channel images: 12 in grey on one shared scale), plus,
    for the joint fields of a PDE (``poisson``: (a, u), ``darcy``: (K, p)), a row with the residual map titled by
    the sample's relative residual. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lightning_pde.metrics.field_residual import FIELD_PDES

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
        channels = samples.shape[1]
        count = min(len(samples), 6 if channels > 1 else 12)
        names = [f"channel {c}" for c in range(channels)]
        rows = [samples[:count, c] for c in range(channels)]
        residual_name = None
        if pde is not None and channels == 2:
            channel_names, residual_name, residual = _residual_map(pde)
            names = [*channel_names, residual_name]
            rows.append(residual(samples[:count].double()).float())
            relative = FIELD_PDES[pde](samples[:count].double())
        fig, axes = plt.subplots(len(rows), count, figsize=(1.9 * count, 1.9 * len(rows)), squeeze=False)
        for j in range(count):
            for i, (row, name) in enumerate(zip(rows, names)):
                ax = axes[i, j]
                if residual_name is not None and i == len(rows) - 1:
                    scale = float(row[j].abs().max())
                    ax.imshow(row[j], cmap="RdBu_r", vmin=-scale, vmax=scale)
                    ax.set_title(f"rel. residual {float(relative[j]):.2g}", fontsize=8)
                elif channels == 1:  # images: grey levels on one scale for all, so contrast errors show
                    ax.imshow(row[j], cmap="gray_r", vmin=float(rows[0].min()), vmax=float(rows[0].max()))
                else:
                    ax.imshow(row[j], cmap="viridis")
                ax.set_xticks([]), ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(name)
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
        self.written = plot_samples(samples, reference, path, title=type(pl_module).__name__,
                                    pde=getattr(trainer.datamodule, "pde", None))
        rank_zero_info(f"PIDSamplePlot: wrote {self.written}")

    def state_dict(self) -> dict[str, Any]:
        return {}
