"""lightning-pde: a plugin-based PyTorch Lightning framework for machine learning on PDEs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

try:
    __version__ = version("lightning-pde")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"


CHECKPOINT_CLASS_KEY = "lightning_pde_module"

#: Version of the plugin interface: the entry-point groups, `Problem`, `Condition`, `DerivativeEngine`/`Fields` and
#: the module APIs in docs/design.md. A plugin states the version it was written for as ``LPDE_PLUGIN_API = 1`` in its
#: top-level package; the registry refuses (and reports) entries written for another version. It changes only when
#: one of those interfaces changes incompatibly.
PLUGIN_API_VERSION = 1


def load(path: str | Path, map_location: Any = None) -> Any:
    """Load a trained lightning-pde LightningModule from a checkpoint, with no other arguments needed.

    Args:
        path: a ``.ckpt`` file written by Lightning (``lpde fit`` or ``Trainer.fit``).
        map_location: passed to ``torch.load`` (e.g. ``"cpu"``).

    The checkpoint is read with ``weights_only=True`` (no unpickling of objects), and every class it names (the
    module's, its problem's, its network's, ...) must be one meant to be built from a spec (see
    :func:`lightning_pde.spec.import_class`), checked before anything is called: a crafted checkpoint can choose
    which of those classes are built and with what plain-data arguments, nothing else. Importing the modules it names
    still runs their top-level code, as any import does, so it can only pick among code that is already importable.

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: when the file is not a lightning-pde checkpoint, or names a class that may not be built from it.
    """
    import pytorch_lightning as pl
    import torch

    from lightning_pde import registry
    from lightning_pde.spec import import_class

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    registry.load_all()  # classes from plugins must be importable before Lightning re-instantiates them
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not a readable checkpoint: {error}") from error
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    cls_path = (checkpoint.get(CHECKPOINT_CLASS_KEY) if isinstance(checkpoint, dict) else None) or (
        hparams.get("_class_path") if isinstance(hparams, dict) else None)
    if not cls_path:
        raise ValueError(f"{str(path)!r} is not a lightning-pde checkpoint (no {CHECKPOINT_CLASS_KEY!r} entry)")
    try:
        cls = import_class(cls_path, base=pl.LightningModule)
    except ValueError as error:
        raise ValueError(f"{str(path)!r}: {error}") from error
    return cls.load_from_checkpoint(path, map_location=map_location, weights_only=True)
