"""lightning-pde against DeepXDE and PINA on the same Burgers and Poisson2D PINNs, one run after another.

    .venv/bin/python benchmarks/peers.py                 # full run: Poisson 5000 steps, Burgers 10000 steps
    .venv/bin/python benchmarks/peers.py --quick         # smoke test: 300 steps each, short quiet wait
    .venv/bin/python benchmarks/peers.py --problems burgers --libraries lightning-pde deepxde --threads 2

On first use it creates ``benchmarks/.peers-venv`` (``python3 -m venv``) and installs the CPU torch wheel first, then
DeepXDE and PINA into it; lightning-pde runs from the interpreter that runs this script, the peers from that venv,
where lightning_pde is not installed (the references go to the runners as an .npz). ``--skip-install`` uses the venv
as it is.

Every run is its own process (``benchmarks/peers/run_*.py``, protocol in ``benchmarks/peers/protocol.py``): float32,
seed 0, full-batch Adam lr 1e-3, tanh MLP with Xavier/Glorot-normal init; Poisson 64x3, 2000 interior + 400
boundary points; Burgers (nu = 0.01/pi) 32x3, 2540 interior + 80 boundary + 160 initial points. Before each run the
script waits until the other processes use less than ``--quiet-threshold`` of the machine's CPU time (from
/proc/stat over 2 s), up to ``--quiet-timeout`` seconds, and records the load it measured then and during the run.

Writes ``benchmarks/results/peers.json`` and ``peers.png`` (``peers-quick.*`` with --quick) and prints a table with
steps/s, rows/s, relative L2 at equal steps and at equal wall time, and the lightning-pde / peer speed ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from provenance import stamp

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
RUNNERS = BENCHMARKS / "peers"
PEER_VENV = BENCHMARKS / ".peers-venv"
RESULTS = BENCHMARKS / "results"

TORCH_VERSION = "2.13.0"  # the local CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build
DEEPXDE_VERSION = "1.15.0"
PINA_VERSION = "0.3.2.post2610"  # the version the peer comparison was first measured with

#: library -> (runner script, runs in the peer venv, extra runner arguments)
LIBRARIES: dict[str, tuple[str, bool, list[str]]] = {
    "lightning-pde": ("run_lpde.py", False, []),
    "lightning-pde-loop": ("run_lpde.py", False, ["--loop", "plain"]),
    "lightning-pde-compiled": ("run_lpde.py", False, ["--engine", "SinglePass", "--compile", "--fused-adam"]),
    "deepxde": ("run_deepxde.py", True, []),
    "pina": ("run_pina.py", True, []),
}
LABELS = {"lightning-pde": "lightning-pde (Trainer)", "lightning-pde-loop": "lightning-pde (plain loop)",
          "lightning-pde-compiled": "lightning-pde (SinglePass + compile + fused Adam)",
          "deepxde": "DeepXDE", "pina": "PINA"}
PROBLEMS = ("poisson", "burgers")
DEFAULT_STEPS = {"poisson": 5000, "burgers": 10000}
QUICK_STEPS = 300
RESULT_KEY = "peers_result"  # protocol.RESULT_KEY (protocol imports torch; this script needs only numpy)


# -- the peer venv ------------------------------------------------------------------------------------------------
def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def peer_versions() -> dict[str, str] | None:
    """Versions of torch, deepxde and pina-mathlab in the peer venv; None if any is missing."""
    if not peer_python().exists():
        return None
    code = ("import importlib.metadata as m, json, torch; print(json.dumps({**{p: m.version(p) for p in "
            "('torch', 'deepxde', 'pina-mathlab')}, 'torch_cuda': torch.version.cuda}))")
    probe = subprocess.run([str(peer_python()), "-c", code], capture_output=True, text=True)
    return json.loads(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 else None


def pip_install(*requirements: str) -> bool:
    print(f"peers: pip install {' '.join(requirements)}", flush=True)
    return subprocess.run([str(peer_python()), "-m", "pip", "install", "--quiet", *requirements]).returncode == 0


def closest_pina_version() -> str:
    """PINA_VERSION if the index has it, else the newest 0.3.2 build, else the newest release."""
    listing = subprocess.run([str(peer_python()), "-m", "pip", "index", "versions", "pina-mathlab"],
                             capture_output=True, text=True).stdout
    line = next((l for l in listing.splitlines() if l.startswith("Available versions:")), "")
    versions = [v.strip() for v in line.split(":", 1)[-1].split(",") if v.strip()]
    if not versions:
        raise RuntimeError(f"peers: pip index lists no pina-mathlab versions:\n{listing}")
    if PINA_VERSION in versions:
        return PINA_VERSION
    return next((v for v in versions if v.startswith("0.3.2")), versions[0])  # pip lists newest first


def ensure_peer_venv(skip_install: bool) -> dict[str, str]:
    """The peer venv's versions, creating and filling it first if needed (unless `skip_install`)."""
    versions = peer_versions()
    wanted = versions is not None and versions["torch"].startswith(TORCH_VERSION) \
        and versions["deepxde"] == DEEPXDE_VERSION and versions["pina-mathlab"].startswith("0.3.2")
    if wanted or skip_install:
        if versions is None:
            raise SystemExit(f"peers: --skip-install, but {PEER_VENV} lacks torch, deepxde or pina-mathlab")
        return versions
    if not peer_python().exists():
        print(f"peers: creating {PEER_VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    # torch first, pinned: deepxde and pina only ask for `torch`, which pip would otherwise satisfy with CUDA.
    if not pip_install(f"torch=={TORCH_VERSION}"):
        raise SystemExit(f"peers: could not install torch=={TORCH_VERSION} into {PEER_VENV}")
    pina = closest_pina_version()
    if not pip_install(f"torch=={TORCH_VERSION}", f"deepxde=={DEEPXDE_VERSION}", f"pina-mathlab=={pina}"):
        raise SystemExit(f"peers: could not install deepxde=={DEEPXDE_VERSION} and pina-mathlab=={pina}")
    versions = peer_versions()
    if versions is None:
        raise SystemExit(f"peers: {PEER_VENV} still lacks a package after installing")
    return versions


# -- references ---------------------------------------------------------------------------------------------------
def write_references(problems: list[str], folder: Path) -> dict[str, Path]:
    """One .npz per problem with ``points`` (N, 2) float64 and ``values`` (N,) float64: the exact Poisson solution on
    101 x 101 and the Cole-Hopf Burgers solution on 256 x 100 (x-major, as ``burgers_reference`` returns it)."""
    from lightning_pde.problems import Poisson2D
    from lightning_pde.reference import burgers_reference

    paths = {}
    for problem in problems:
        if problem == "poisson":
            grid = Poisson2D().evaluation_grid()
            points, values = grid.points.numpy(), grid.values.numpy().reshape(-1)
        else:
            reference = burgers_reference(nu=0.01 / math.pi, nx=256, nt=100)
            x, t = np.meshgrid(reference["x"], reference["t"], indexing="ij")
            points, values = np.stack([x.ravel(), t.ravel()], axis=1), reference["u"].reshape(-1)
        paths[problem] = folder / f"{problem}.npz"
        np.savez(paths[problem], points=points, values=values)
    return paths


# -- machine load -------------------------------------------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
N_CPUS = os.cpu_count() or 1


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from the first line of /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal  # guest time is already inside user
    return busy, busy + idle + iowait


def machine_load(window: float = 2.0) -> float:
    """Fraction of the machine's CPU time (all CPUs) that was busy over the next `window` seconds."""
    busy0, total0 = cpu_ticks()
    time.sleep(window)
    busy1, total1 = cpu_ticks()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(threshold: float, timeout: float) -> dict:
    """Wait until other processes use less than `threshold` of the machine's CPU time, at most `timeout` s.

    While this process sleeps, whatever /proc/stat counts as busy belongs to other processes."""
    start, reported = time.monotonic(), -math.inf
    while True:
        load = machine_load()
        waited = time.monotonic() - start
        if load < threshold or waited >= timeout:
            return {"quiet": load < threshold, "background_load": load, "background_cores": load * N_CPUS,
                    "threshold": threshold, "waited_s": waited}
        if waited - reported >= 30:
            print(f"peers: waiting for a quiet machine: other processes use {load:.0%} of {N_CPUS} CPUs "
                  f"(waited {waited:.0f} of {timeout:.0f} s)", flush=True)
            reported = waited


# -- running ------------------------------------------------------------------------------------------------------
def run_library(library: str, problem: str, steps: int, probe_every: int, seed: int, threads: int,
                reference: Path) -> dict:
    """Run one runner process and return its result, plus the CPU load of other processes during the run."""
    script, in_peer_venv, extra = LIBRARIES[library]
    python = peer_python() if in_peer_venv else Path(sys.executable)
    command = [str(python), str(RUNNERS / script), "--problem", problem, "--steps", str(steps), "--probe-every",
               str(probe_every), "--seed", str(seed), "--threads", str(threads), "--reference", str(reference),
               *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    if in_peer_venv:
        env.pop("PYTHONPATH", None)  # nothing of the project's environment may leak into the peer venv
    busy0, total0 = cpu_ticks()
    usage0, wall0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPOSITORY)
    usage1, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - wall0
    busy1, total1 = cpu_ticks()
    lines = [l for l in process.stdout.splitlines() if l.startswith("{") and RESULT_KEY in l]
    if process.returncode != 0 or not lines:
        tail = "\n".join((process.stdout + process.stderr).splitlines()[-25:])
        print(f"peers: {library} on {problem} failed (exit {process.returncode}):\n{tail}", flush=True)
        return {"library": library, "problem": problem, "error": tail, "exit_code": process.returncode}
    result = json.loads(lines[-1])
    own = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    other = max(0.0, (busy1 - busy0) / CLOCK_TICKS - own)
    result.update(library=library, process_seconds=wall, process_cpu_seconds=own,
                  background_cores_during_run=other / wall,
                  background_load_during_run=other / max(1e-9, (total1 - total0) / CLOCK_TICKS))
    return result


# -- analysis -----------------------------------------------------------------------------------------------------
def error_at(probes: list[list[float]], seconds: float) -> float | None:
    """Relative L2 at training time `seconds`, log-linear between the probes; None past the last probe."""
    walls = np.array([p[1] for p in probes])
    if seconds > walls[-1] + 1e-9:
        return None
    errors = np.log(np.array([p[2] for p in probes]))
    return float(np.exp(np.interp(seconds, walls, errors)))


def summarise(problem: str, runs: dict[str, dict]) -> dict:
    """Speed and accuracy of the finished runs of one problem, side by side."""
    done = {name: run for name, run in runs.items() if "error" not in run}
    if not done:
        return {"problem": problem, "libraries": {}}
    # The latest time every run reached: there each curve is measured, none extrapolated.
    equal_time = min(run["train_seconds"] for run in done.values())
    time_grid = np.linspace(equal_time / 10, equal_time, 10)
    libraries = {}
    for name, run in done.items():
        libraries[name] = {
            "steps": run["steps"], "train_seconds": run["train_seconds"],
            "steps_per_second": run["steps_per_second"], "steady_steps_per_second": run["steady_steps_per_second"],
            "rows_per_step": run["rows_per_step"], "rows_per_second": run["rows_per_step"] * run["steps_per_second"],
            "rel_l2_final": run["final_rel_l2"], "rel_l2_min": min(p[2] for p in run["probes"]),
            "rel_l2_at_equal_time": error_at(run["probes"], equal_time),
            "rel_l2_on_time_grid": [error_at(run["probes"], t) for t in time_grid],
            "background_load_during_run": run["background_load_during_run"],
        }
    ratios = {}
    for ours in ("lightning-pde", "lightning-pde-loop"):
        for peer in ("deepxde", "pina"):
            if ours in done and peer in done:
                ratios[f"{ours} / {peer}"] = {
                    "steps_per_second": done[ours]["steps_per_second"] / done[peer]["steps_per_second"],
                    "rows_per_second": libraries[ours]["rows_per_second"] / libraries[peer]["rows_per_second"]}
    if "lightning-pde" in done and "lightning-pde-loop" in done:
        trainer, loop = done["lightning-pde"]["steps_per_second"], done["lightning-pde-loop"]["steps_per_second"]
        ratios["Trainer - plain loop, ms per step"] = 1e3 * (1 / trainer - 1 / loop)
    return {"problem": problem, "equal_time_seconds": equal_time, "time_grid_seconds": time_grid.tolist(),
            "libraries": libraries, "ratios": ratios}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = [p for p in report["problems"] if report["summary"][p]["libraries"]]
    figure, axes = plt.subplots(1, len(problems), figsize=(6 * len(problems), 4.2), squeeze=False)
    styles = {"lightning-pde": ("C0", "-"), "lightning-pde-loop": ("C0", ":"), "lightning-pde-compiled": ("C3", "-"),
              "deepxde": ("C1", "-"),
              "pina": ("C2", "-")}
    for axis, problem in zip(axes[0], problems):
        for run in report["runs"][problem].values():
            if "error" in run:
                continue
            color, line = styles[run["library"]]
            walls, errors = [p[1] for p in run["probes"]], [p[2] for p in run["probes"]]
            axis.semilogy(walls, errors, line, color=color, marker=".",
                          label=f"{LABELS[run['library']]}: {run['steps_per_second']:.1f} steps/s")
        axis.axvline(report["summary"][problem]["equal_time_seconds"], color="0.6", lw=0.8, ls="--")
        steps = report["steps"][problem]
        axis.set(title=f"{problem}: {steps} Adam steps, {report['threads']} thread(s)",
                 xlabel="training wall time [s] (probes excluded)", ylabel="relative L2 error")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def print_table(report: dict) -> None:
    busy = [f"{r['library']}/{p}" for p, runs in report["runs"].items() for r in runs.values()
            if "error" not in r and r["background_load_during_run"] >= report["quiet_threshold"]]
    if busy:
        print(f"\nWARNING: other processes used >= {report['quiet_threshold']:.0%} of the CPUs during "
              f"{', '.join(busy)}: these speeds are not quiet-machine figures.")
    for problem in report["problems"]:
        summary = report["summary"][problem]
        if not summary["libraries"]:
            continue
        print(f"\n{problem} ({report['steps'][problem]} steps, {report['threads']} thread(s); "
              f"equal time = {summary['equal_time_seconds']:.1f} s)")
        print(f"{'library':28s} {'steps/s':>8s} {'steady':>8s} {'rows/step':>9s} {'krows/s':>8s} {'train s':>8s} "
              f"{'rel L2 end':>10s} {'@equal t':>9s} {'bg load':>8s}")
        for name, row in summary["libraries"].items():
            at_time = row["rel_l2_at_equal_time"]
            steady = row["steady_steps_per_second"]
            print(f"{LABELS[name]:28s} {row['steps_per_second']:8.1f} "
                  f"{steady if steady is not None else float('nan'):8.1f} {row['rows_per_step']:9d} "
                  f"{row['rows_per_second'] / 1e3:8.1f} {row['train_seconds']:8.1f} {row['rel_l2_final']:10.2e} "
                  f"{at_time if at_time is not None else float('nan'):9.2e} "
                  f"{row['background_load_during_run']:8.0%}")
        for name, ratio in summary["ratios"].items():
            if isinstance(ratio, dict):
                print(f"  {name:34s} steps/s x{ratio['steps_per_second']:.2f}   "
                      f"rows/s x{ratio['rows_per_second']:.2f}")
            else:
                print(f"  {name:34s} {ratio:+.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", choices=PROBLEMS, default=list(PROBLEMS))
    parser.add_argument("--libraries", nargs="+", choices=list(LIBRARIES), default=list(LIBRARIES))
    parser.add_argument("--steps-poisson", type=int, default=None, help=f"default {DEFAULT_STEPS['poisson']}")
    parser.add_argument("--steps-burgers", type=int, default=None, help=f"default {DEFAULT_STEPS['burgers']}")
    parser.add_argument("--probe-every", type=int, default=None, help="default 500 (--quick: 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of every run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps per run, a smoke test")
    parser.add_argument("--skip-install", action="store_true", help="use benchmarks/.peers-venv as it is")
    parser.add_argument("--quiet-threshold", type=float, default=0.10,
                        help="other processes' share of all CPUs below which the machine counts as quiet")
    parser.add_argument("--quiet-timeout", type=float, default=None,
                        help="seconds to wait for a quiet machine before each run (default 600, --quick 10)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON path (default results/peers.json, --quick results/peers-quick.json); "
                             "the PNG goes beside it")
    options = parser.parse_args()
    default_steps = {p: QUICK_STEPS if options.quick else DEFAULT_STEPS[p] for p in PROBLEMS}
    steps = {"poisson": options.steps_poisson or default_steps["poisson"],
             "burgers": options.steps_burgers or default_steps["burgers"]}
    probe_every = options.probe_every or (100 if options.quick else 500)
    quiet_timeout = options.quiet_timeout if options.quiet_timeout is not None else (10 if options.quick else 600)
    output = options.output or RESULTS / ("peers-quick.json" if options.quick else "peers.json")

    versions = {}
    if any(LIBRARIES[name][1] for name in options.libraries):
        versions = ensure_peer_venv(options.skip_install)
    from importlib.metadata import version

    versions.update({"lightning-pde": version("lightning-pde"), "lightning-pde torch": version("torch"),
                     "pytorch-lightning": version("pytorch-lightning")})
    runs: dict[str, dict[str, dict]] = {problem: {} for problem in options.problems}
    with tempfile.TemporaryDirectory(prefix="lpde-peers-") as folder:
        references = write_references(options.problems, Path(folder))
        for problem in options.problems:
            for library in options.libraries:
                quiet = wait_quiet(options.quiet_threshold, quiet_timeout)
                print(f"peers: {library} on {problem}, {steps[problem]} steps, {options.threads} thread(s), "
                      f"other load before {quiet['background_load']:.0%}", flush=True)
                run = run_library(library, problem, steps[problem], probe_every, options.seed, options.threads,
                                  references[problem])
                run["before_run"] = quiet
                runs[problem][library] = run
                if "error" not in run:
                    print(f"peers:   {run['steps_per_second']:.1f} steps/s, rel L2 {run['final_rel_l2']:.2e}, "
                          f"other load during the run {run['background_load_during_run']:.0%}", flush=True)

    report = {
        **stamp(options.threads), "quick": options.quick,
        "seed": options.seed, "steps": {p: steps[p] for p in options.problems}, "probe_every": probe_every,
        "quiet_threshold": options.quiet_threshold,
        "versions": versions, "problems": options.problems, "libraries": options.libraries,
        "settings": "float32, full-batch Adam lr 1e-3, tanh MLP, Xavier/Glorot-normal init, zero biases; "
                    "Poisson 64x3, 2000 + 400 points; Burgers nu=0.01/pi, 32x3, 2540 + 80 + 160 points; "
                    "wall time = training steps only (start-up and error probes excluded)",
        "equal_time": "relative L2 interpolated log-linearly between probes at the shortest run's training time",
        "summary": {problem: summarise(problem, runs[problem]) for problem in options.problems},
        "runs": runs,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    plot(report, output.with_suffix(".png"))
    print_table(report)
    print(f"\nwrote {output} and {output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
