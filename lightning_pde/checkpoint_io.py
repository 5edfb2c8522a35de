"""Checkpoint writing that an interruption cannot corrupt."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
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
