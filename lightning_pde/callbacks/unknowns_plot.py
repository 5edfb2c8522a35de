"""The estimates of an inverse problem's unknown constants against the training step: a picture and a table."""

from __future__ import annotations

import csv
import math
import numbers
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from lightning_pde.validation import nonempty_str, positive_int


class UnknownsPlot(Callback):
    """Record the module's unknown constants (``pl_module.unknowns``, name -> 0-dim Parameter, as a PINN keeps a
    problem's ``unknowns = {"nu": 0.05}``) during training, and when fit ends write a PNG with one panel per unknown
    (the estimate against the step, and the true value as a dashed line where the problem gives one as
    ``true_unknowns = {"nu": 0.01 / pi}``) and a CSV of the history (rank 0 only). A module without unknowns is left
    alone.

    Args:
        filename: PNG path; relative paths are under ``trainer.log_dir`` (or the working directory).
        csv_filename: CSV path (columns ``step`` and one per unknown), relative paths as for `filename`.
        log_every_n_steps: how often the estimates are recorded; the values before the first step and after the
            last are recorded too.
    """

    def __init__(self, filename: str = "unknowns.png", csv_filename: str = "unknowns.csv",
                 log_every_n_steps: int = 10) -> None:
        filename = nonempty_str("UnknownsPlot", "filename", filename)
        csv_filename = nonempty_str("UnknownsPlot", "csv_filename", csv_filename)
        if Path(filename) == Path(csv_filename):
            raise ValueError(f"UnknownsPlot: filename and csv_filename must differ, both are {filename!r}")
        log_every_n_steps = positive_int("UnknownsPlot", "log_every_n_steps", log_every_n_steps)
        self.filename, self.csv_filename, self.log_every_n_steps = filename, csv_filename, log_every_n_steps
        #: (step, {name: value}) in step order
        self.history: list[tuple[int, dict[str, float]]] = []
        self.path: Path | None = None
        self.csv_path: Path | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and _unknowns(pl_module):
            # a bad true value would otherwise only show when fit ends, after the training it was meant to judge
            true_unknowns(pl_module)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer.global_step, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step % self.log_every_n_steps == 0:
            self._record(trainer.global_step, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer.global_step, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir is a broadcast under DDP: every rank must ask for it, before rank 0 goes on alone (asked
        # on rank 0 only, it waits forever for ranks that have left)
        log_dir = trainer.log_dir
        if not trainer.is_global_zero or not _unknowns(pl_module) or not self.history:
            return
        self.path = self._resolve(self.filename, log_dir)
        self.csv_path = self._resolve(self.csv_filename, log_dir)
        write_history(self.history, self.csv_path)
        plot_unknowns(self.history, self.path, true_unknowns(pl_module))
        rank_zero_info(f"UnknownsPlot: wrote {self.path} and {self.csv_path}")

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [(int(step), dict(values)) for step, values in state_dict["history"]]

    def _record(self, step: int, pl_module: pl.LightningModule) -> None:
        unknowns = _unknowns(pl_module)
        # on_train_end after a logged last step, or a resumed run's first step, would repeat a step already here
        if unknowns and (not self.history or self.history[-1][0] != step):
            self.history.append((step, {name: float(value.detach()) for name, value in unknowns.items()}))

    @staticmethod
    def _resolve(filename: str, log_dir: str | None) -> Path:
        path = Path(filename)
        return path if path.is_absolute() else Path(log_dir or ".") / path


def _unknowns(pl_module: pl.LightningModule) -> Any:
    """The module's unknown constants (a name -> Parameter mapping), or None when it has none."""
    unknowns = getattr(pl_module, "unknowns", None)
    return unknowns if unknowns is not None and len(unknowns) > 0 else None


def true_unknowns(pl_module: pl.LightningModule) -> dict[str, float]:
    """The true values of the module's unknowns that its problem gives as ``true_unknowns``, {} when none."""
    problem = getattr(pl_module, "problem", None)
    given = getattr(problem, "true_unknowns", None)
    if given is None:
        return {}
    owner = f"UnknownsPlot: {type(problem).__name__}.true_unknowns"
    if not isinstance(given, dict):
        raise ValueError(f"{owner} must map unknown names to numbers, got {given!r}")
    values = {}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{owner}[{name!r}] must be a finite number, got {value!r}")
        values[name] = float(value)
    return values


def write_history(history: list[tuple[int, dict[str, float]]], path: Path) -> Path:
    """Write `history` ((step, {name: value}) pairs) as a CSV with a ``step`` column and one column per unknown."""
    names = list(history[0][1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["step", *names])
        for step, values in history:
            writer.writerow([step, *(repr(values[name]) for name in names)])
    return path


def plot_unknowns(history: list[tuple[int, dict[str, float]]], path: Path,
                  true_values: dict[str, float] | None = None) -> Path:
    """Draw each unknown's estimate against the step into `path` (PNG), one panel per unknown, with its true value
    (from `true_values`, where given) as a dashed line; return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(history[0][1])
    true_values = true_values or {}
    columns = min(len(names), 4)
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), layout="constrained",
                             squeeze=False)
    steps = [step for step, _ in history]
    for ax, name in zip(axes.flat, names):
        estimates = [values[name] for _, values in history]
        ax.plot(steps, estimates, label="estimate")
        title = f"{name} = {estimates[-1]:.4g}"
        if name in true_values:
            true = true_values[name]
            ax.axhline(true, color="black", linestyle="--", linewidth=1, label="true")
            title += f" (true {true:.4g}" + (f", error {(estimates[-1] - true) / true:+.2%})" if true else ")")
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.legend(loc="best")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path
