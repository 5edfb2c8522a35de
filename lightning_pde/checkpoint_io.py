"""Checkpoint writing that an interruption cannot corrupt, and a final ``last.ckpt`` for every fit."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` that writes each local checkpoint to a temporary file in the target directory, flushes
    it to disk and renames it over the target (``os.replace`` is atomic on POSIX and Windows). A write that is
    interrupted (killed process, full disk, an exception while serialising) leaves the previous file at that path
    intact and no partial file behind. Remote paths (``s3://`` ...) fall back to Lightning's writer.

    The ``lpde`` CLI installs it on every trainer whose strategy uses the default checkpoint IO; with a plain
    ``Trainer`` pass ``plugins=[AtomicCheckpointIO()]``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"AtomicCheckpointIO.save_checkpoint got storage_options={storage_options!r}; "
                            "local checkpoint files take none")
        if "://" in str(path) and not str(path).startswith("file://"):
            return super().save_checkpoint(checkpoint, path)
        path = Path(str(path).removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as tmp:
                torch.save(checkpoint, tmp)
                tmp.flush()
                os.fchmod(tmp.fileno(), 0o644)  # mkstemp's 0600 would hide checkpoints from a shared group
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def model_checkpoints(trainer: pl.Trainer) -> list[ModelCheckpoint]:
    return [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]


class LastCheckpoint(Callback):
    """Make every fit that ends normally leave ``last.ckpt``, holding its final state, in the directory of each
    `ModelCheckpoint` (by default ``<log dir>/checkpoints``).

    Lightning's `ModelCheckpoint` saves at the end of a training epoch or, when validation does not run every epoch,
    at the end of a validation. A run that stops inside an epoch (``max_steps`` shorter than one epoch, or not a
    multiple of it) then has no checkpoint at all, or one from an earlier step, and `lpde test`/`predict` have
    nothing current to load. This callback turns ``save_last`` on where the config left it unset (an explicit
    ``save_last: false`` is respected) and, when training ends, saves the last checkpoint unless one was already
    saved at the final step. It runs on every rank (saving is collective under DDP) and is installed by the `lpde`
    CLI; with a plain ``Trainer`` pass ``callbacks=[LastCheckpoint()]``.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for checkpoint in model_checkpoints(trainer):
            if checkpoint.save_last is None:
                checkpoint.save_last = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fast_dev_run:  # Lightning writes no checkpoint for a smoke test; neither do we
            return
        for checkpoint in model_checkpoints(trainer):
            # ModelCheckpoint saves `last` whenever it saves at a step, so a save at the final step is current.
            if checkpoint.save_last and checkpoint._last_global_step_saved != trainer.global_step:
                checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))
