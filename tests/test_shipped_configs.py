"""Every config under configs/ runs for a few steps, its validation pass included, with its own model and callbacks
(only point counts, step counts and the validation batch shrunk): within a peak-memory bound, and without creating or
modifying any file in the source tree (git-ignored ones included) when its run directory is elsewhere.

One process imports lightning_pde once and forks a child per config, which calls ``lightning_pde.cli.main`` from the
repository root; the child's peak resident memory comes from ``os.wait4``. The DDP configs run as a subprocess with
two CPU ranks (Lightning's launcher re-executes the command line, which in a forked pytest would be pytest's), and
their peak is the largest rank's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
#: peak resident memory allowed to one run (its largest process), bytes; the shipped quant configs asked for 7-11 GB
PEAK_BYTES = 3 * 2**30
#: wall-clock limit of one run, seconds (a hung run fails instead of stalling the suite)
TIMEOUT = 300

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
#: collocation PINNs (configs/pinn, configs/quant, configs/ddp): 3 steps in epochs of 3, a validation pass after the
#: first epoch over one 512-point batch of the evaluation grid (Stein's 257 rows a point are then scored in chunks)
PINN_STEPS = ["--trainer.max_steps=3", "--data.init_args.steps_per_epoch=3", "--trainer.check_val_every_n_epoch=1",
              "--trainer.limit_val_batches=1", "--data.init_args.eval_batch_size=512"]
#: GPT-PINN: three neurons, each a short full PINN on small grids (tests/test_gptpinn.py's CLI overrides)
GPTPINN_TINY = ["--model.max_neurons=3", "--model.neuron_max_steps=20", "--model.neuron_lbfgs_steps=0",
                "--model.pde_grid=[10,10]", "--model.test_grid=[8,8]", "--model.n_condition_points=16",
                "--model.first_params=null"]
GPTPINN_GRIDS = {"allen_cahn": ["--model.parameter_grid={lam: [0.0001, 0.001, 3], eps: [1.0, 5.0, 3]}",
                                "--model.neuron_pde_grid=[10, 4]"],
                 "burgers": ["--model.parameter_grid={nu: [0.05, 0.5, 6]}", "--model.neuron_pde_grid=[10, 10]"],
                 "helmholtz": ["--model.parameter_grid={a1: [1.0, 2.0, 3], a2: [1.0, 2.0, 3], k: [1.0, 1.0, 1]}"],
                 "klein_gordon": []}
#: PID (tests/test_pid_cli.py's overrides)
TINY_MIXTURE = ["--model.init_args.backbone.init_args.hidden=[16]", "--model.init_args.batch_size=32",
                "--data.init_args.n_train=320", "--data.init_args.n_val=64", "--data.init_args.batch_size=32",
                "--trainer.max_steps=6", "--trainer.val_check_interval=3"]
TINY_FIELDS = ["--model.init_args.data_shape=[2,8,8]", "--data.init_args.n=8", "--data.init_args.n_train=64",
               "--data.init_args.n_val=8", "--data.init_args.batch_size=8", "--trainer.max_steps=3"]
PID_TINY = {"mixture_teacher": TINY_MIXTURE,
            "mixture_pid": [*TINY_MIXTURE, "--model.init_args.n_grid=8"],
            "poisson_teacher": [*TINY_FIELDS, "--model.init_args.backbone.init_args.width=8",
                                "--model.init_args.sample_steps=3"],
            "poisson_pid": [*TINY_FIELDS, "--model.init_args.batch_size=4", "--model.init_args.n_grid=4"],
            "poisson_piddm": [*TINY_FIELDS, "--model.init_args.batch_size=4", "--model.init_args.n_pairs=8",
                              "--model.init_args.teacher_steps=3"]}


def _problem_points(config: Path) -> list[str]:
    """Fewer collocation and evaluation points for the config's problem: each ``n_*`` constructor argument the
    config sets."""
    model = yaml.safe_load(config.read_text())["model"]["init_args"]
    counts = (model.get("problem") or {}).get("init_args") or {}
    return [f"--model.init_args.problem.init_args.{key}={64 if key == 'n_evaluation' else 16}"
            for key in counts if key.startswith("n_")] + (
        ["--model.init_args.problem.init_args.n_evaluation=64"]
        if "n_evaluation" not in counts and counts.get("dim") else [])


def _gptpinn_args(config: Path) -> list[str]:
    name = config.stem.removesuffix("_s2gpt")
    args = [*GPTPINN_TINY, *GPTPINN_GRIDS[name]]
    model = yaml.safe_load(config.read_text())["model"]["init_args"]
    if "neuron_net" in model:  # time-windowed neurons (Allen-Cahn)
        args += ["--model.neuron_net.init_args.net.init_args.hidden=[8]", "--model.neuron_net.init_args.n_windows=2"]
    else:
        args.append("--model.neuron_hidden=[8]")
    if name == "klein_gordon":
        args.append("--model.parameter_grid={alpha: [-2.0, -1.0, 2], beta: [0.0, 1.0, 2], gamma: [0.0, 1.0, 2]}")
    return args


def cases() -> list:
    out = []
    for config in sorted(CONFIGS.glob("*/*.yaml")):
        family, name = config.parent.name, config.stem
        configs = [config]
        if family == "ddp" and name == "overlay":  # an overlay on a config of one's choice, as docs/ddp.md runs it
            configs = [CONFIGS / "pinn" / "poisson2d.yaml", config]
        args = [arg for c in configs for arg in ("--config", str(c.relative_to(ROOT)))]
        if family in ("pinn", "quant", "ddp"):
            args += [*PINN_STEPS, *_problem_points(configs[0])]
        elif family == "gptpinn":
            args += _gptpinn_args(config)
        elif family == "pid":
            args += PID_TINY[name]
        else:
            raise AssertionError(f"configs/{family}: a family this test does not know; give it its overrides")
        if family == "ddp":
            args += ["--trainer.devices=2", "--trainer.accelerator=cpu"]
        out.append(pytest.param(family, name, args, id=f"{family}/{name}"))
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
def poisson_teacher(tmp_path_factory) -> Path:
    """A tiny Poisson teacher checkpoint for the Poisson students (named explicitly, as docs/pid.md does)."""
    root = tmp_path_factory.mktemp("teacher")
    code, _ = run_forked(["fit", "--config", str(CONFIGS / "pid" / "poisson_teacher.yaml"), *QUIET,
                          *PID_TINY["poisson_teacher"], f"--trainer.default_root_dir={root}"], root / "log.txt")
    assert code == 0, (root / "log.txt").read_text()[-3000:]
    return max(root.rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)


@pytest.mark.parametrize("family, name, args", cases())
def test_shipped_config_runs_within_memory_and_leaves_the_tree_alone(family, name, args, tmp_path, request):
    args = ["fit", *args, *QUIET, f"--trainer.default_root_dir={tmp_path / 'runs'}"]
    if name in ("poisson_pid", "poisson_piddm"):
        args.append(f"--model.teacher={request.getfixturevalue('poisson_teacher')}")
    log = tmp_path / "log.txt"
    before = tree_state()
    code, peak = (run_subprocess if family == "ddp" else run_forked)(args, log)
    after = tree_state()
    output = log.read_text()[-4000:]
    assert code == 0, f"exit status {code}:\n{output}"
    print(f"{family}/{name}: peak RSS {peak / 2**20:.0f} MiB")
    assert peak < PEAK_BYTES, f"peak resident memory {peak / 2**30:.2f} GiB over {PEAK_BYTES / 2**30:.0f} GiB"
    written = sorted(path for path in after if before.get(path) != after[path])
    assert not written, f"the run wrote into the source tree: {written}"
