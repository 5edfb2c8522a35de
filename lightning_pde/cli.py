"""The ``lpde`` command: the Lightning CLI with lightning-pde's plugins loaded and its defaults.

``lpde fit|validate|test|predict --config configs/<method>/<name>.yaml [--section.key=value ...]`` and
``lpde plugins``. ``python -m lightning_pde`` is the same program.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.plugins.io import TorchCheckpointIO

from lightning_pde import registry
from lightning_pde.callbacks import SolutionWriter
from lightning_pde.checkpoint_io import AtomicCheckpointIO
from lightning_pde.modules.finite import NonFiniteLossError

#: exceptions that are the user's to fix; shown as one line, not a traceback (``LPDE_DEBUG=1`` shows it)
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, registry.PluginError, MisconfigurationException)


def prefer_registered_names() -> None:
    """Make a short ``class_path`` (``MLP``) mean the class registered under that name by lightning-pde or a plugin.

    jsonargparse resolves a short name by searching every imported subclass of the parameter's type, and refuses
    when two match: ``net: nn.Module`` and ``class_path: MLP`` fail as soon as torchvision (``torchvision.ops.MLP``)
    is imported, which other libraries do. A name in a ``lightning_pde.*`` entry-point group is ours, so it is
    resolved to the registered class first; any other name goes to jsonargparse's own search as before.
    Idempotent; applied by :class:`LPDECLI`.
    """
    from jsonargparse import _from_config, _typehints

    original = _typehints.resolve_class_path_by_name
    if getattr(original, "prefers_registered", False):
        return

    @functools.wraps(original)
    def resolve(cls: type | tuple[type, ...], name: str) -> str:
        if isinstance(name, str) and "." not in name:
            bases = cls if isinstance(cls, tuple) else (cls,)
            matches = [c for c in registry.registered_classes(name)
                       if any(isinstance(b, type) and issubclass(c, b) for b in bases)]
            if len(matches) == 1:
                return f"{matches[0].__module__}.{matches[0].__qualname__}"
        return original(cls, name)

    resolve.prefers_registered = True
    _typehints.resolve_class_path_by_name = resolve
    _from_config.resolve_class_path_by_name = resolve


class LPDECLI(LightningCLI):
    """LightningCLI in subclass mode for models and data, ``inference_mode=False`` by default (residuals need
    gradients in validation and test), omegaconf interpolation in configs, and an ``.npz`` writer for `predict`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("model_class", pl.LightningModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("datamodule_class", pl.LightningDataModule)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("trainer_defaults", {"inference_mode": False})
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("parser_kwargs", {"parser_mode": "omegaconf"})
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        registry.load_all()
        prefer_registered_names()
        super().__init__(*args, **kwargs)

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and ckpt_path not in ("last", "best", "hpc") and not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"--ckpt_path: checkpoint {ckpt_path!r} does not exist")

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        # Atomic checkpoint writes unless the user chose their own CheckpointIO (or a strategy brings one).
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer

    def before_predict(self) -> None:
        if not any(isinstance(c, SolutionWriter) for c in self.trainer.callbacks):
            self.trainer.callbacks.append(SolutionWriter())


def user_message(message: str) -> str:
    """The error that matters from jsonargparse's report on a subclass argument.

    A failure inside a class constructor (``Burgers: nu must be ...``) reaches us wrapped as "Does not validate
    against any of the Union subtypes", followed by one line per candidate type and a dump of the whole namespace;
    keep only the candidates' own errors."""
    if not message.startswith("Does not validate against any of the Union subtypes"):
        return message
    reasons = [line.strip()[2:] for line in message.splitlines()
               if line.strip().startswith("- ") and "Expected a <class 'NoneType'>" not in line]
    return "\n  ".join(reasons) if reasons else message


def print_plugins() -> None:
    """Print every entry point of every group with its distribution, version and status."""
    rows = [("group", "name", "object", "distribution", "status")]
    for entry in sorted(registry.entries(), key=lambda e: (e.group, e.name)):
        rows.append((entry.group, entry.name, entry.value, f"{entry.distribution} {entry.version}",
                     "ok" if entry.ok else f"BROKEN: {entry.error}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])


def main(args: list[str] | None = None) -> int:
    """Entry point of ``lpde``; returns the exit status."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = os.environ.get("LPDE_DEBUG", "") not in ("", "0")
    if argv[:1] == ["plugins"]:
        print_plugins()
        return 0
    registry.load_all()
    for entry in registry.entries():
        if not entry.ok:
            print(f"lpde: warning: plugin {entry.name!r} ({entry.group}, from {entry.distribution}) failed to "
                  f"load: {entry.error}", file=sys.stderr)
    try:
        # Pass args only when called from Python: LightningCLI warns when both they and sys.argv are given.
        LPDECLI(args=None if args is None else argv)
    except NonFiniteLossError as error:
        # A diverged run, not a usage error: the message names the term and step; exit status 1.
        if debug:
            raise
        print(f"lpde: error: {error}", file=sys.stderr)
        return 1
    except USER_ERRORS as error:
        if debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"lpde: error: {user_message(str(message))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
