"""Every config under configs/ runs for a few steps, its validation pass included, with its own model, derivative engine
and callbacks (only sizes shrunk, by :func:`tiny_args`, keeping Stein's sample count): within a peak-memory
bound, and without creating or modifying any file in the source tree (git-ignored ones included) when its run
directory is elsewhere.

One process imports lightning_pde once and forks a child per config, which calls ``lightning_pde.cli.main`` from the
repository root; the child's peak resident memory comes from ``os.wait4``. The DDP configs run as a subprocess with
two CPU ranks (Lightning's launcher re-executes the command line, which in a forked pytest would be pytest's), and
their peak is the largest rank's.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("pinn", "gptpinn", "pid", "quant", "pinnacle", "quant/paper")
#: every shipped method config (configs/ddp, the DDP overlay and a DDP copy of the Burgers PINN, run below too)
CONFIGS = sorted(config for family in FAMILIES for config in (ROOT / "configs" / family).glob("*.yaml"))
#: configs whose smoke run is in `make test-slow` only, to keep the default suite within its time: the paper-protocol
#: configs (tests/test_quant_paper.py builds every one and trains the Poisson ones by default) and three PINNacle
#: configs whose first step compiles for about a minute (Burgers1d-C and Poisson2d-C, same recipe, run by default)
SLOW = {*(f"paper/{c.stem}" for c in (ROOT / "configs" / "quant" / "paper").glob("*.yaml")),
        "pinnacle/ns2d_c", "pinnacle/wave1d_c", "pinnacle/poisson_inv"}
#: PID students that distil a learned teacher given as --model.teacher=PATH, and the teacher config they take
TEACHER_OF = {"poisson_pid": "poisson_teacher", "poisson_piddm": "poisson_teacher",
              "darcy_pid": "darcy_teacher", "darcy_piddm": "darcy_teacher", "digits_pid": "digits_teacher"}

PINN_STEPS = ["--data.init_args.steps_per_epoch=1", "--data.init_args.eval_batch_size=64", "--trainer.max_steps=2",
              "--trainer.check_val_every_n_epoch=1", "--trainer.log_every_n_steps=1"]
GPTPINN = ["--model.max_neurons=2", "--model.neuron.max_steps=5", "--model.neuron.second_order.iterations=0",
           "--model.pde_grid=[8,8]", "--model.neuron.pde_grid=[10,4]", "--model.test_grid=[6,6]",
           "--model.n_condition_points=8", "--model.first_params=null"]
MIXTURE = ["--data.init_args.n_train=64", "--data.init_args.n_val=32", "--data.init_args.batch_size=16",
           "--trainer.max_steps=2", "--trainer.val_check_interval=2", "--trainer.log_every_n_steps=1"]
DIGITS = ["--data.init_args.n_train=16", "--data.init_args.n_val=4", "--data.init_args.n_test=4",
          "--data.init_args.batch_size=8", "--trainer.max_steps=2", "--trainer.check_val_every_n_epoch=1",
          "--trainer.log_every_n_steps=1"]
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
        # 2, not 1: the CLI parses 1 as the float 1.0, "every batch" (a Poisson TT + Stein run then scores its whole
        # 10000-point grid at 257 rows a point)
        args.append("--trainer.limit_val_batches=2")
    return args + PINN_STEPS


def _gptpinn(config: dict) -> list[str]:
    model = config["model"]["init_args"]
    # every axis of the parameter box, two values
    axes = ", ".join(f"{key}: [{axis[0]}, {axis[1]}, {min(axis[2], 2)}{', log' if 'log' in axis[3:] else ''}]"
                     for key, axis in model["parameter_grid"].items())
    args = [*GPTPINN, f"--model.parameter_grid={{{axes}}}"]
    net = model["neuron"]["net"]
    if net["class_path"].rsplit(".", 1)[-1] == "TimeWindows":  # time-windowed neurons: shrink the windows' network
        args += ["--model.neuron.net.init_args.net.init_args.hidden=[8]", "--model.neuron.net.init_args.n_windows=2"]
    else:
        args.append("--model.neuron.net.init_args.hidden=[8]")
    return args


def _pid(config: Path, teacher: Path | None) -> list[str]:
    stem = config.stem
    if stem.startswith("mixture"):
        args = [*MIXTURE, "--model.init_args.backbone.init_args.hidden=[16]"]
        return args + (["--model.init_args.batch_size=16", "--model.init_args.n_grid=8"] if stem == "mixture_pid"
                       else [])
    args = list(DIGITS if stem.startswith("digits") else FIELDS)
    if stem.endswith("_teacher"):
        return args + ["--model.init_args.backbone.init_args.width=8", "--model.init_args.sample_steps=3"]
    if teacher is None:
        raise ValueError(f"{name(config)} distils a teacher: pass one (a {TEACHER_OF[stem]}.yaml checkpoint)")
    args += [f"--model.teacher={teacher}", "--model.init_args.batch_size=4"]
    return args + (["--model.init_args.n_grid=4"] if stem.endswith("_pid")
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


#: peak resident memory allowed to one run (its largest process), bytes; the shipped quant configs asked for 7-11 GB
PEAK_BYTES = 3 * 2**30
#: wall-clock limit of one run, seconds (a hung run fails instead of stalling the suite)
TIMEOUT = 300

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def _memory_args(config: Path) -> list[str]:
    """:func:`tiny_args`, but with the config's own number of Stein samples: the rows a
    point costs in training and in validation (2K + 1) are what the memory bound is about."""
    return [arg for arg in tiny_args(config, teacher=Path("TEACHER"))
            if not arg.startswith("--model.init_args.derivatives.init_args.samples=")]


def cases() -> list:
    out = []
    for config in CONFIGS:
        args = ["--config", str(config.relative_to(ROOT)), *_memory_args(config)]
        out.append(pytest.param("method", config.stem, args, id=name(config),
                                marks=pytest.mark.slow if name(config) in SLOW else ()))
    poisson = ROOT / "configs" / "pinn" / "poisson2d.yaml"
    for ddp in sorted((ROOT / "configs" / "ddp").glob("*.yaml")):
        # the overlay goes on a config of one's choice (docs/ddp.md); the DDP Burgers config is a whole one
        stack = [poisson, ddp] if ddp.stem == "overlay" else [ddp]
        args = [arg for c in stack for arg in ("--config", str(c.relative_to(ROOT)))]
        args += [*_memory_args(stack[0]), "--trainer.devices=2", "--trainer.accelerator=cpu"]
        out.append(pytest.param("ddp", ddp.stem, args, id=f"ddp/{ddp.stem}"))
    return out


def tree_state() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file git reports as changed, untracked or ignored under the repository root (tracked
    files that change appear as new entries), except the virtual environment and the interpreter's bytecode."""
    listing = subprocess.run(["git", "status", "--porcelain", "--ignored", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    state = {}
    for entry in filter(None, listing):
        path = ROOT / entry[3:]
        if path.is_relative_to(ROOT / ".venv") or "__pycache__" in path.parts:
            continue
        files = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts] if path.is_dir() else [path]
        for file in files:
            stat = file.stat() if file.exists() else None
            state[str(file.relative_to(ROOT))] = (stat.st_mtime_ns, stat.st_size) if stat else (0, -1)
    return state


def run_forked(args: list[str], log: Path) -> tuple[int, int]:
    """Run ``lpde`` with `args` in a forked child from the repository root; (exit status, peak RSS in bytes)."""
    from lightning_pde.cli import main  # imported once, in the parent, before the fork

    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.dont_write_bytecode = True  # the interpreter's caches are not the run's output
            signal.alarm(TIMEOUT)
            os.chdir(ROOT)
            try:
                result = main(args)
                code = 0 if result in (0, None) else int(result)
            except SystemExit as exit_info:
                code = exit_info.code if isinstance(exit_info.code, int) else 1
        except BaseException:  # noqa: BLE001 - report anything, then leave without running pytest's teardown
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024


def run_subprocess(args: list[str], log: Path) -> tuple[int, int]:
    """Run ``python -m lightning_pde`` with `args` from the repository root; (exit status, peak RSS in bytes of the
    largest process, the ranks it launched included: ``wait4`` reports a child's waited-for descendants too)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    with open(log, "w") as out:
        process = subprocess.Popen(["timeout", str(TIMEOUT), sys.executable, "-m", "lightning_pde", *args], cwd=ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss * 1024


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, Path]:
    """Tiny teacher checkpoints for the PID students, trained on first use (named explicitly, as docs/pid.md
    does), by teacher config stem."""
    return {}


def trained_teacher(stem: str, teachers: dict[str, Path], root: Path) -> Path:
    if stem not in teachers:
        config = ROOT / "configs" / "pid" / f"{stem}.yaml"
        root.mkdir(parents=True, exist_ok=True)
        code, _ = run_forked(["fit", "--config", str(config), *QUIET, *tiny_args(config),
                              f"--trainer.default_root_dir={root}"], root / "log.txt")
        assert code == 0, (root / "log.txt").read_text()[-3000:]
        teachers[stem] = max(root.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    return teachers[stem]


@pytest.mark.parametrize("family, name, args", cases())
def test_shipped_config_runs_within_memory_and_leaves_the_tree_alone(family, name, args, tmp_path, request):
    args = ["fit", *args, *QUIET, f"--trainer.default_root_dir={tmp_path / 'runs'}"]
    if "--model.teacher=TEACHER" in args:
        teacher = trained_teacher(TEACHER_OF[name.split("/")[-1]], request.getfixturevalue("teachers"),
                                  tmp_path / "teacher")
        args[args.index("--model.teacher=TEACHER")] = f"--model.teacher={teacher}"
    log = tmp_path / "log.txt"
    before = tree_state()
    code, peak = (run_subprocess if family == "ddp" else run_forked)(args, log)
    after = tree_state()
    output = log.read_text()[-4000:]
    assert code == 0, f"exit status {code}:\n{output}"
    print(f"{request.node.callspec.id}: peak RSS {peak / 2**20:.0f} MiB")
    assert peak < PEAK_BYTES, f"peak resident memory {peak / 2**30:.2f} GiB over {PEAK_BYTES / 2**30:.0f} GiB"
    written = sorted(path for path in after if before.get(path) != after[path])
    assert not written, f"the run wrote into the source tree: {written}"
    outputs = [path for path in (tmp_path / "runs").rglob("*") if path.is_file()]
    assert any(path.suffix == ".ckpt" for path in outputs), f"no checkpoint under default_root_dir: {outputs}"
