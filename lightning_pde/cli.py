"""The ``lpde`` command: the Lightning CLI with lightning-pde's plugins loaded and its defaults.

``lpde fit|validate|test|predict --config configs/<method>/<name>.yaml [--section.key=value ...]`` and
``lpde plugins``. ``python -m lightning_pde`` is the same program.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from jsonargparse import ArgumentError
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO

from lightning_pde import registry
from lightning_pde.callbacks import SolutionWriter
from lightning_pde.checkpoint_io import AtomicCheckpointIO, LastCheckpoint, model_checkpoints
from lightning_pde.modules.finite import NonFiniteLossError
from lightning_pde.spec import import_class, is_spec

#: exceptions that are the user's to fix; shown as one line, not a traceback (``LPDE_DEBUG=1`` shows it)
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, registry.PluginError, MisconfigurationException,
               ArgumentError)

#: Trainer arguments Lightning accepts unchecked although a value below the bound fails later, mid-run (a modulo by
#: zero at the first step or the first epoch end); checked before the Trainer is built.
TRAINER_MINIMUMS = {"accumulate_grad_batches": 1, "check_val_every_n_epoch": 1}

#: what a plot file is, for the summary `lpde fit` prints at the end
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".gif", ".jpg")


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
        # exit_on_error=False: a bad argument raises ArgumentError, which `main` prints as one line
        kwargs.setdefault("parser_kwargs", {"parser_mode": "omegaconf", "exit_on_error": False})
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        registry.load_all()
        prefer_registered_names()
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: Any, args: Any) -> None:
        super().parse_arguments(parser, args)
        # LightningCLI next copies the --ckpt_path checkpoint's hyperparameters into the config, where jsonargparse
        # would build any subclass of each argument's declared type (any nn.Module for `net`). A checkpoint is
        # untrusted input: its classes must pass lightning_pde.load's rule before they get there.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            check_checkpoint_classes(ckpt_path)

    def before_instantiate_classes(self) -> None:
        config = self._subcommand_config()
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and ckpt_path not in ("last", "best", "hpc") and not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"--ckpt_path: checkpoint {ckpt_path!r} does not exist")
        if "weights_only" in config and config.get("weights_only") is None:
            # Read --ckpt_path without unpickling objects: torch before 2.6 defaults to unpickling anything.
            config["weights_only"] = True
        trainer = config.get("trainer") or {}
        for key, minimum in TRAINER_MINIMUMS.items():
            value = trainer.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
                raise ValueError(f"--trainer.{key} must be an integer >= {minimum}, got {value!r}")

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (TypeError, ValueError, MisconfigurationException) as error:
            # Lightning checks its arguments in the Trainer's constructor and some checks raise TypeError; all of
            # them are the user's values to fix, so they become one line naming the values the message mentions.
            raise ValueError(trainer_error(error, self._subcommand_config().get("trainer") or {})) from error
        # Atomic checkpoint writes unless the user chose their own CheckpointIO (or a strategy brings one).
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        # Every fit that ends normally leaves last.ckpt (Lightning alone saves only at epoch or validation ends).
        if not any(isinstance(c, LastCheckpoint) for c in trainer.callbacks):
            trainer.callbacks.append(LastCheckpoint())
        return trainer

    def _subcommand_config(self) -> Any:
        return self.config.get(self.subcommand, self.config) if self.subcommand else self.config

    def before_fit(self) -> None:
        self.fit_started = time.time()

    def after_fit(self) -> None:
        # Every rank gets here; only rank 0 prints, and nothing below is a collective (trainer.log_dir is one).
        if self.trainer.is_global_zero and not self.trainer.fast_dev_run:
            print(fit_summary(self.trainer, getattr(self, "fit_started", 0.0)), flush=True)

    def before_predict(self) -> None:
        if not any(isinstance(c, SolutionWriter) for c in self.trainer.callbacks):
            self.trainer.callbacks.append(SolutionWriter())


def check_checkpoint_classes(path: str | Path) -> None:
    """Refuse a checkpoint whose hyperparameters name a class that may not be built from a spec.

    The module class (``_class_path``) must be a buildable LightningModule and every nested spec a buildable class
    (:func:`lightning_pde.spec.import_class`); optimizers and learning-rate schedulers, which an
    ``OptimizerCallable``/``LRSchedulerCallable`` argument names, are admitted too. Nothing is called.

    Raises:
        ValueError: naming the checkpoint and the refused class path.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"--ckpt_path: {str(path)!r} is not a readable checkpoint: {error}") from error
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict):
        return
    try:
        if "_class_path" in hparams:
            import_class(hparams["_class_path"], base=pl.LightningModule)
        pending = [v for k, v in hparams.items() if k != "_class_path"]
        while pending:
            value = pending.pop(0)
            if is_spec(value):
                import_class(value["class_path"], admit=(torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler))
            if isinstance(value, dict):
                pending.extend(value.values())
            elif isinstance(value, (list, tuple)):
                pending.extend(value)
    except ValueError as error:
        raise ValueError(f"--ckpt_path: {str(path)!r}: {error}") from error


def trainer_error(error: BaseException, settings: Any) -> str:
    """Lightning's complaint about a Trainer argument, followed by the arguments it is about: those it names, and
    those whose value it quotes (``Timer(duration='abc')`` is about ``max_time``)."""
    message = " ".join(str(error).split())
    defaults = {name: p.default for name, p in inspect.signature(pl.Trainer.__init__).parameters.items()}
    named = [f"trainer.{key}={value!r}" for key, value in dict(settings).items()
             if key in defaults and (re.search(rf"\b{re.escape(key)}\b", message)
                                     or (value != defaults[key] and isinstance(value, str) and repr(value) in message))]
    return f"trainer: {message}" + (f" (got {', '.join(named)})" if named else "")


#: lines of jsonargparse's reports that describe its machinery rather than what was wrong with the value
REPORT_NOISE = re.compile(r"Does not validate against any of the Union subtypes|Subtypes: |Errors:|Given value|"
                          r"Expected a <class 'NoneType'>|Expected a path but .* either not accessible or invalid|"
                          r"Subclass types expect one of:|a class path \(str\)|a dict with")


def user_message(message: str) -> str:
    """The error that matters from jsonargparse's report, on one line.

    jsonargparse reports a bad value over many lines: ``Parser key "trainer.max_steps":`` then, for a union type,
    one line per candidate type, the accepted forms of a class path and the given value; a failure inside a class
    constructor (``Burgers: nu must be ...``) comes wrapped the same way with a dump of the whole namespace. Keep the
    key, the candidates' own errors and a short given value."""
    key = re.match(r'Parser key "([^"]+)":\s*', message)
    body = message[key.end():] if key else message
    given = re.findall(r"^\s*Given value: (.*)$", body, re.MULTILINE)
    parts: list[str] = []
    for line in body.splitlines():
        line = re.sub(r'^Parser key "([^"]+)":', r"\1:", line.strip().removeprefix("- ").strip())
        if line and not REPORT_NOISE.match(line) and line not in parts:
            parts.append(line)
    text = ""
    for part in parts:
        text += (" " if text.endswith(":") else "; " if text else "") + part
    if given:
        nested = re.fullmatch(r"NestedArg\(key='(.*)', val='(.*)'\)", given[-1].strip())
        value = f"{nested[1]}={nested[2]}" if nested else given[-1].strip()
        if len(value) <= 200 and value not in text:
            text += f" (got {value})"
    text = text or " ".join(body.split())
    return f"--{key[1]}: {text}" if key else text


def run_directory(trainer: pl.Trainer) -> Path:
    """Where the run's logs and plots are: ``trainer.log_dir`` without its broadcast (a collective under DDP)."""
    if trainer.loggers:
        logger = trainer.loggers[0]
        directory = logger.log_dir if isinstance(logger, (TensorBoardLogger, CSVLogger)) else logger.save_dir
        if directory is not None:
            return Path(directory)
    return Path(trainer.default_root_dir)


def fit_summary(trainer: pl.Trainer, started: float) -> str:
    """Lines naming the checkpoint(s) a fit left and the directory of its logs and plots (absolute paths)."""
    lines = []
    checkpoints = model_checkpoints(trainer)
    for checkpoint in checkpoints:
        # last_model_path is empty only where a config says save_last: false; then the newest top-k file is it
        path = checkpoint.last_model_path or (checkpoint.best_model_path if not checkpoint.monitor else "")
        if path:
            lines.append(f"lpde: checkpoint: {Path(path).resolve()}")
        if checkpoint.monitor and checkpoint.best_model_path:
            lines.append(f"lpde: best checkpoint ({checkpoint.monitor}): "
                         f"{Path(checkpoint.best_model_path).resolve()}")
    if not lines:
        lines.append("lpde: no checkpoint was written" + ("" if checkpoints else " (checkpointing is disabled)"))
    directory = run_directory(trainer).resolve()
    plots = sorted(p.name for p in directory.glob("*")
                   if p.suffix.lower() in PLOT_SUFFIXES and p.is_file() and p.stat().st_mtime >= started)
    lines.append(f"lpde: logs and plots: {directory}" + (f" ({', '.join(plots)})" if plots else ""))
    return "\n".join(lines)


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
    # A user's own problem file in the working directory is importable by class_path, as under `python -m`; at the
    # end of the path, so that it never shadows an installed package.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
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
