"""Tensor-compressed, fully-quantized PINN training (Lu et al. 2025, arXiv 2512.09202): the four variants of
configs/quant/ (FP32 dense autograd, TT, TT + Stein, TT + Stein + DiffQuant + SMX) on Poisson2D, HJB(20), Heat(100).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quant.py            # all 12 runs, short budgets (2 CPU cores)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quant.py --steps 50 --problems poisson2d   # a quick look

Each run is a separate process (so its peak resident memory is its own), fitted through the lpde CLI with the
config's settings and a shortened step budget; the relative L2 error is then computed on the problem's evaluation
points. Also reports trainable parameters, compression ratio, wall time per step, peak RSS and the cost model of
lightning_pde.quant.cost_model (MACs by precision; the MAC-energy ratio and the MAC-count ratio to FP32, both
estimates under the printed assumptions, not measured speed-ups; memory). Writes
benchmarks/results/quant.json and prints a table. Timings are only comparable within one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import torch
from provenance import stamp

from lightning_pde.quant.cost_model import assumptions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PROBLEMS = ("poisson2d", "hjb20d", "heat100d")
VARIANTS = ("fp32", "tt", "tt_se", "tt_se_smx")
#: default training steps per problem for the 2-core budget (the configs' own budgets are longer)
STEPS = {"poisson2d": 30, "hjb20d": 30, "heat100d": 30}


def relative_l2(model, grid) -> float:
    """Relative L2 error of `model` on an evaluation grid (in chunks, no gradients)."""
    with torch.no_grad():
        pred = torch.cat([model(chunk.to(torch.float32)) for chunk in grid.points.split(2048)])
    exact = grid.values.to(pred.dtype).reshape(pred.shape)
    return float((pred - exact).norm() / exact.norm())


def run_one(config: str, steps: int, accelerator: str = "cpu", overrides: tuple[str, ...] = ()) -> dict:
    """Fit one config for `steps` steps in this process on `accelerator` and score it.

    The error is measured twice: as trained (`rel_l2`; a quantized model infers in its quantized format) and in the
    other precision: a quantized model's trained weights in float32 (`rel_l2_float_inference`,
    lightning_pde.quant.full_precision), a float model quantized after training to INT8 SMX (`rel_l2_int8_ptq`, the
    floor that INT8 inference alone puts under that network). `overrides` are extra CLI arguments
    (``--model.init_args.derivatives.init_args.samples=128``)."""
    import copy

    from lightning_pde import registry
    from lightning_pde.cli import LPDECLI
    from lightning_pde.derivatives import Stein
    from lightning_pde.quant import SMXQuantizer, convert_layers, full_precision
    from lightning_pde.quant.cost_model import step_cost

    registry.load_all()
    with tempfile.TemporaryDirectory() as workdir:
        cli = LPDECLI(run=False, args=[
            "--config", config, f"--trainer.default_root_dir={workdir}", f"--trainer.max_steps={steps}",
            f"--trainer.accelerator={accelerator}", "--trainer.devices=1",
            "--trainer.enable_progress_bar=false", "--trainer.logger=false", "--trainer.enable_checkpointing=false",
            "--trainer.limit_val_batches=0", "--trainer.enable_model_summary=false", *overrides])
        model = cli.model
        start = time.perf_counter()
        cli.trainer.fit(model, datamodule=cli.datamodule)
        seconds = time.perf_counter() - start
    model.eval().cpu()
    problem = model.problem
    grid = problem.evaluation_grid()
    rel_l2 = relative_l2(model, grid)
    if any(getattr(m, "quant_enabled", False) for m in model.modules()):
        with full_precision(model):
            other = {"rel_l2_float_inference": relative_l2(model, grid)}
    else:
        ptq = copy.deepcopy(model)
        convert_layers(ptq.net, SMXQuantizer())
        other = {"rel_l2_int8_ptq": relative_l2(ptq, grid)}
    net = model.net
    params = sum(p.numel() for p in net.parameters())
    ratio = net.compression_ratio() if callable(getattr(net, "compression_ratio", None)) else 1.0
    engine = model.derivatives
    stein = isinstance(engine, Stein)
    smx = getattr(net, "quantizer", None) is not None
    sizes = {name: c.n_points for name, c in model.conditions.items()}
    n_interior = sizes.get("pde", 0)
    n_other = sum(v for k, v in sizes.items() if k != "pde")
    space = [n for n in problem.input_names if n != "t"]
    cost = step_cost(net, len(space), n_interior, n_other, "stein" if stein else "autograd",
                     engine.samples if stein else 0, smx)
    return {"config": config, "steps": cli.trainer.global_step, "fit_seconds": seconds,
            "seconds_per_step": seconds / max(cli.trainer.global_step, 1), "rel_l2": rel_l2, "parameters": params,
            "compression": ratio, "cost": cost.as_dict(), "points": sizes, "overrides": list(overrides), **other}


def run_subprocess(config: str, steps: int, accelerator: str, threads: int, overrides: tuple[str, ...] = (),
                   timeout: float | None = None) -> dict:
    """`run_one` in a fresh process (so that its peak resident memory is its own); raises
    subprocess.TimeoutExpired after `timeout` seconds."""
    out = subprocess.run([sys.executable, __file__, "--one", config, "--steps", str(steps), "--accelerator",
                          accelerator, *[f"--set={o}" for o in overrides]], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": str(threads)}, timeout=timeout)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{config} failed")
    return json.loads(line[7:])


def engine_timing(repeats: int = 3) -> dict:
    """Training-step time on Heat(100) with the FP32 dense baseline network (the configs' widths): reverse-mode
    autograd's exact Laplacian against Stein's estimator (configs' K), same points, same network; best of
    `repeats` steps after one warm-up."""
    from lightning_pde.derivatives import Autograd, Stein
    from lightning_pde.modules import PINN
    from lightning_pde.nn import MLP
    from lightning_pde.problems import Heat

    torch.manual_seed(0)
    out = {}
    for name, engine in (("autograd", Autograd()), ("stein_k32", Stein(samples=32))):
        model = PINN(Heat(dim=100), MLP([256, 256, 256]), derivatives=engine, fused=False)
        generator = torch.Generator().manual_seed(0)
        points = {k: c.sample(50, generator, "uniform") for k, c in model.conditions.items()}
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            sum(model.losses(points).values()).backward()
            times.append(time.perf_counter() - start)
        out[name] = min(times[1:])
    out["stein_speedup"] = out["autograd"] / out["stein_k32"]
    return out


def plot(report: dict, path: Path) -> None:
    """Bar chart of relative L2 error and cost-model speed-up per problem and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for k, variant in enumerate(VARIANTS):
        sel = [next((r for r in rows if r["problem"] == p and r["variant"] == variant), None) for p in problems]
        xs = [i + 0.2 * (k - 1.5) for i in range(len(problems))]
        axes[0].bar(xs, [r["rel_l2"] if r else 0 for r in sel], 0.2, label=variant)
        axes[1].bar(xs, [r.get("energy_ratio_cost_model", 0) if r else 0 for r in sel], 0.2, label=variant)
    for ax, title in zip(axes, (f"relative L2 error ({rows[0]['steps']} steps, {rows[0].get('accelerator', 'cpu')})", "MAC-energy ratio to FP32 (cost model, not a speed-up)")):
        ax.set_xticks(range(len(problems)), problems)
        ax.set_title(title)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: per problem, STEPS)")
    parser.add_argument("--output", default=str(RESULTS / "quant.json"))
    parser.add_argument("--accelerator", default="cpu", help="where the runs train (cpu, gpu); scoring is on the CPU")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once (timings are then not comparable; for error at convergence on a GPU)")
    parser.add_argument("--set", action="append", default=[], metavar="ARG",
                        help="extra CLI argument for every run, e.g. --set=--model.init_args.derivatives.init_args."
                             "samples=128 (repeatable)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--plot-only", action="store_true", help="redraw docs/images/quant_results.png from --output")
    options = parser.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    if options.plot_only:
        plot(json.loads(Path(options.output).read_text()), ROOT / "docs" / "images" / "quant_results.png")
        return
    if options.one:
        result = run_one(options.one, options.steps, options.accelerator, tuple(options.set))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result))
        return
    runs = [(problem, variant) for problem in options.problems for variant in options.variants]
    processes = {}
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(run_subprocess, f"configs/quant/{p}_{v}.yaml", options.steps or STEPS[p],
                               options.accelerator, threads, tuple(options.set)): (p, v) for p, v in runs}
        for future in as_completed(futures):
            problem, variant = futures[future]
            row = future.result()
            row.update(problem=problem, variant=variant, accelerator=options.accelerator, jobs=options.jobs)
            processes[problem, variant] = row
            other = row.get("rel_l2_float_inference", row.get("rel_l2_int8_ptq"))
            print(f"{problem:10s} {variant:10s} rel_l2={row['rel_l2']:.3e} (other precision {other:.3e}) "
                  f"{row['seconds_per_step'] * 1e3:.0f} ms/step", flush=True)
            # partial results survive a run cut off by a time limit
            Path(options.output).parent.mkdir(parents=True, exist_ok=True)
            Path(options.output).with_suffix(".partial.json").write_text(json.dumps(list(processes.values()), indent=2))
    rows = [processes[run] for run in runs]
    for problem in options.problems:
        base = next((r for r in rows if r["problem"] == problem and r["variant"] == "fp32"), None)
        for r in rows:
            if r["problem"] == problem and base is not None:
                r["energy_ratio_cost_model"] = base["cost"]["energy_pj"] / r["cost"]["energy_pj"]
                r["mac_ratio_cost_model"] = base["cost"]["total_macs"] / r["cost"]["total_macs"]
                r["memory_saving_cost_model"] = ((base["cost"]["weight_bytes"] + base["cost"]["activation_bytes"])
                                                 / (r["cost"]["weight_bytes"] + r["cost"]["activation_bytes"]))
                r["time_ratio_vs_fp32"] = base["seconds_per_step"] / r["seconds_per_step"]
                r["error_ratio_vs_fp32"] = r["rel_l2"] / base["rel_l2"]
    timing = engine_timing() if options.accelerator == "cpu" else None  # a CPU timing; skipped on a GPU run
    report = {**stamp(threads), "overrides": options.set, "results": rows, "heat100_engine_step_seconds": timing,
              "cost_model_assumptions": assumptions()}
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(json.dumps(report, indent=2))
    print(f"\n{'problem':10s} {'variant':10s} {'rel L2':>9s} {'x FP32':>7s} {'float inf':>9s} {'INT8 PTQ':>9s} "
          f"{'params':>8s} {'compr':>7s} {'ms/step':>8s} {'RSS MB':>7s} {'energy x':>8s} {'MACs x':>7s} {'est.mem':>8s}")
    for r in rows:
        print(f"{r['problem']:10s} {r['variant']:10s} {r['rel_l2']:9.2e} {r.get('error_ratio_vs_fp32', float('nan')):7.2f} "
              f"{r.get('rel_l2_float_inference', float('nan')):9.2e} {r.get('rel_l2_int8_ptq', float('nan')):9.2e} "
              f"{r['parameters']:8d} {r['compression']:7.1f} {r['seconds_per_step'] * 1e3:8.0f} "
              f"{r['peak_rss_mb']:7.0f} {r.get('energy_ratio_cost_model', float('nan')):8.1f} "
              f"{r.get('mac_ratio_cost_model', float('nan')):7.1f} "
              f"{r.get('memory_saving_cost_model', float('nan')):8.1f}")
    print("\nenergy x / MACs x: the FP32 baseline's MAC energy / MAC count over the row's (cost-model estimates, not "
          "measured speed-ups); assumptions:")
    for line in assumptions():
        print(f"  - {line}")
    if timing is not None:
        print(f"\nHeat(100), dense [256]*3, 50 points per condition: autograd step {timing['autograd']:.3f} s, Stein "
              f"(K=32) step {timing['stein_k32']:.3f} s, Stein {timing['stein_speedup']:.1f}x faster")
    picture = (ROOT / "docs" / "images" / "quant_results.png" if Path(options.output) == RESULTS / "quant.json"
               else Path(options.output).with_suffix(".png"))
    plot(report, picture)
    print(f"\nwrote {options.output} and {picture} ({threads} thread(s))")


if __name__ == "__main__":
    main()
