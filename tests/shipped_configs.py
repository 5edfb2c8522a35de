"""Every shipped config under configs/, and the command-line overrides that make a run of it take seconds.

A test that must run *each* shipped config (outputs, memory, DDP) takes the config as it is and adds only
:func:`tiny_args`: sizes (points, steps, neurons, samples) shrink, nothing else changes: the config's model, engine,
callbacks and checkpointing stay, so the test exercises what a user runs.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("pinn", "gptpinn", "pid", "quant")
#: every shipped method config (configs/ddp holds the DDP overlay and a DDP copy of the Burgers PINN: they start
#: several processes, so the DDP tests run them)
CONFIGS = sorted(config for family in FAMILIES for config in (ROOT / "configs" / family).glob("*.yaml"))
#: PID students that distil a learned teacher given as --model.teacher=PATH
NEEDS_TEACHER = {"poisson_pid", "poisson_piddm"}

PINN_STEPS = ["--data.init_args.steps_per_epoch=1", "--data.init_args.eval_batch_size=64", "--trainer.max_steps=2",
              "--trainer.check_val_every_n_epoch=1", "--trainer.log_every_n_steps=1"]
GPTPINN = ["--model.max_neurons=2", "--model.neuron_max_steps=5", "--model.neuron_lbfgs_steps=0",
           "--model.pde_grid=[8,8]", "--model.neuron_pde_grid=[10,4]", "--model.test_grid=[6,6]",
           "--model.n_condition_points=8", "--model.first_params=null"]
MIXTURE = ["--data.init_args.n_train=64", "--data.init_args.n_val=32", "--data.init_args.batch_size=16",
           "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.log_every_n_steps=1"]
FIELDS = ["--model.init_args.data_shape=[2,8,8]", "--data.init_args.n=8", "--data.init_args.n_train=16",
          "--data.init_args.n_val=4", "--data.init_args.batch_size=8", "--trainer.max_steps=2",
          "--trainer.check_val_every_n_epoch=1", "--trainer.log_every_n_steps=1"]


def name(config: Path) -> str:
    """``family/stem``, e.g. ``pinn/burgers``."""
    return f"{config.parent.name}/{config.stem}"


def _config(config: Path) -> dict:
    return yaml.safe_load(config.read_text())


def _pinn(config: dict) -> list[str]:
    from lightning_pde import registry

    registry.load_all()
    model = config["model"]["init_args"]
    problem = model["problem"]["class_path"].rsplit(".", 1)[-1]
    (cls,) = registry.registered_classes(problem)
    counts = [p for p in inspect.signature(cls.__init__).parameters if p.startswith("n_")]
    args = [f"--model.init_args.problem.init_args.{count}=8" for count in counts]
    if model.get("net", {}).get("class_path") == "TimeWindows":  # one training step per window
        args += ["--model.init_args.net.init_args.n_windows=2", "--model.init_args.net.init_args.net.init_args.hidden=[8]"]
    if model.get("derivatives", {}).get("class_path") == "Stein":
        args.append("--model.init_args.derivatives.init_args.samples=4")
    if config["trainer"].get("limit_val_batches") != 0:  # a config that validates keeps validating, on one batch
        args.append("--trainer.limit_val_batches=1")
    return args + PINN_STEPS


def _gptpinn(config: dict) -> list[str]:
    model = config["model"]["init_args"]
    # every axis of the parameter box, two values
    axes = ", ".join(f"{key}: [{axis[0]}, {axis[1]}, {min(axis[2], 2)}{', log' if 'log' in axis[3:] else ''}]"
                     for key, axis in model["parameter_grid"].items())
    args = [*GPTPINN, f"--model.parameter_grid={{{axes}}}"]
    if "neuron_net" in model:  # time-windowed neurons: shrink the windows' network, not neuron_hidden
        args += ["--model.neuron_net.init_args.net.init_args.hidden=[8]", "--model.neuron_net.init_args.n_windows=2"]
    else:
        args.append("--model.neuron_hidden=[8]")
    return args


def _pid(config: Path, teacher: Path | None) -> list[str]:
    stem = config.stem
    if stem.startswith("mixture"):
        args = [*MIXTURE, "--model.init_args.backbone.init_args.hidden=[16]"]
        return args + (["--model.init_args.batch_size=16", "--model.init_args.n_grid=8"] if stem == "mixture_pid"
                       else [])
    args = list(FIELDS)
    if stem == "poisson_teacher":
        return args + ["--model.init_args.backbone.init_args.width=8", "--model.init_args.sample_steps=3"]
    if teacher is None:
        raise ValueError(f"{name(config)} distils a teacher: pass one (a poisson_teacher.yaml checkpoint)")
    args += [f"--model.teacher={teacher}", "--model.init_args.batch_size=4"]
    return args + (["--model.init_args.n_grid=4"] if stem == "poisson_pid"
                   else ["--model.init_args.n_pairs=8", "--model.init_args.teacher_steps=3"])


def tiny_args(config: Path, teacher: Path | None = None) -> list[str]:
    """Overrides that shrink `config` to a run of a few seconds (two training steps, each validation pass on one
    small batch) without switching anything off. `teacher`: the checkpoint a PID student distils."""
    family = config.parent.name
    if family == "pid":
        return _pid(config, teacher)
    content = _config(config)
    if content["model"]["class_path"].rsplit(".", 1)[-1] == "GPTPINN":
        return _gptpinn(content)
    return _pinn(content)
