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
#: the module APIs in DESIGN.md. A plugin states the version it was written for as ``LPDE_PLUGIN_API = 1`` in its
#: top-level package; the registry refuses (and reports) entries written for another version. It changes only when
#: one of those interfaces changes incompatibly.
PLUGIN_API_VERSION = 1


def load(path: str | Path, map_location: Any = None) -> Any:
    """Load a trained lightning-pde LightningModule from a checkpoint, with no other arguments needed.

    Args:
        path: a ``.ckpt`` file written by Lightning (``lpde fit`` or ``Trainer.fit``).
        map_location: passed to ``torch.load`` (e.g. ``"cpu"``).

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: when the file is not a lightning-pde checkpoint.
    """
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
    cls_path = checkpoint.get(CHECKPOINT_CLASS_KEY) or checkpoint.get("hyper_parameters", {}).get("_class_path")
    if not cls_path:
        raise ValueError(f"{str(path)!r} is not a lightning-pde checkpoint (no {CHECKPOINT_CLASS_KEY!r} entry)")
    return import_class(cls_path).load_from_checkpoint(path, map_location=map_location, weights_only=True)
