"""Time derivative engines on a tanh MLP: forward mode (`Forward`, torch.func) and the forward Laplacian
(`ForwardLaplacian`) against reverse mode (`Autograd`).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/derivatives.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/derivatives.py --tables heat   # table 3 only

Table 1, the Laplacian over all d inputs (forward: one jvp-of-jvp vmapped over the d directions; reverse: one backward
pass for the gradient, then one per input), for d in --dims and N in --points. Table 2, d^k u_j / dt^k for every
output j of a net with d = 2 inputs and m outputs (forward: one nested jvp serves all outputs; reverse: k backward
passes per output). Table 3, the heat residual u_t - Δ_x u with inputs x_1 .. x_d, t, for d in --heat-dims and
N in --heat-points (forward Laplacian: one propagation over x_1 .. x_d plus one reverse pass for u_t; reverse: one
backward pass for the gradient, then one per x_i; forward: jvp-of-jvp vmapped over the x_i plus a jvp for u_t).
Each case times one training step's derivative work, ``loss = mean(derivative^2)`` then ``loss.backward()`` to the
network's parameters, as the median over repetitions after one warm-up; ``derivative s`` stops the clock when the
derivative exists, ``step s`` includes the backward pass. Writes ``benchmarks/results/derivatives.json`` (with
``--tables``, the tables not run keep the results already there) and prints the tables. One job at a time on an
otherwise idle machine: a second CPU-bound process on these 2 cores distorts small-op PyTorch timings badly.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from lightning_pde.derivatives import Autograd, DerivativeEngine, Fields, Forward, ForwardLaplacian
from lightning_pde.nn import MLP
from provenance import stamp

RESULTS = Path(__file__).resolve().parent / "results"
#: --tables names -> keys of the results file
TABLES = {"laplacian": "laplacian", "time": "time_derivatives", "heat": "heat_residual"}


def time_step(engine: DerivativeEngine, net: MLP, x: Tensor, input_names: tuple[str, ...],
              output_names: tuple[str, ...], derivative: Callable[[Fields], Tensor], repeats: int,
              budget_s: float = 20.0) -> tuple[dict[str, float], Tensor]:
    """Median seconds to `derivative` of the fields and to the end of the backward pass to the parameters, over
    `repeats` runs (fewer, but at least 3, when one run exceeds budget_s / repeats) after a warm-up; and the
    derivative itself."""
    to_derivative, to_step = [], []
    runs, run = repeats + 1, 0
    while run < runs:
        net.zero_grad(set_to_none=True)
        start = time.perf_counter()
        value = derivative(engine.fields(net, x, input_names, output_names))
        middle = time.perf_counter()
        value.square().mean().backward()
        end = time.perf_counter()
        if run == 0:  # warm-up: allocator and dispatch caches
            runs = 1 + max(3, min(repeats, int(budget_s / (end - start))))
        else:
            to_derivative.append(middle - start)
            to_step.append(end - start)
        run += 1
    timing = {"derivative_s": statistics.median(to_derivative), "step_s": statistics.median(to_step),
              "repeats": len(to_step)}
    return timing, value.detach()


def compare(engines: dict[str, DerivativeEngine], net: MLP, x: Tensor, input_names: tuple[str, ...],
            output_names: tuple[str, ...], derivative: Callable[[Fields], Tensor], repeats: int) -> dict:
    """Timings of every engine, each engine's largest difference from ``reverse`` (the reference) and the largest of
    those (``max_abs_difference``)."""
    timings, values = {}, {}
    for name, engine in engines.items():
        timings[name], values[name] = time_step(engine, net, x, input_names, output_names, derivative, repeats)
    differences = {f"{name}_max_abs_difference": float((value - values["reverse"]).abs().max())
                   for name, value in values.items() if name != "reverse"}
    return {**{f"{name}_{key}": value for name, timing in timings.items() for key, value in timing.items()},
            **differences, "max_abs_difference": max(differences.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 20, 100])
    parser.add_argument("--points", type=int, nargs="+", default=[1000, 4096])
    parser.add_argument("--outputs", type=int, nargs="+", default=[1, 8], help="table 2: numbers of outputs m")
    parser.add_argument("--orders", type=int, nargs="+", default=[1, 2, 3], help="table 2: orders k of d^k/dt^k")
    parser.add_argument("--heat-dims", type=int, nargs="+", default=[20, 100], help="table 3: space dimensions d")
    parser.add_argument("--heat-points", type=int, nargs="+", default=[1000], help="table 3: numbers of points N")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES),
                        help="tables to run; the others keep their results already in --output")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=3, help="number of hidden layers")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=None, help="Forward(chunk_size=...); default: all at once")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(RESULTS / "derivatives.json"))
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    engines: dict[str, DerivativeEngine] = {"forward": Forward(chunk_size=options.chunk_size), "reverse": Autograd()}

    def mlp(d: int, m: int) -> MLP:
        torch.manual_seed(0)
        return MLP(hidden=[options.width] * options.depth, activation="tanh", in_features=d, out_features=m)

    laplacians = []
    for d in options.dims if "laplacian" in options.tables else []:
        for n in options.points:
            names = tuple(f"x{i}" for i in range(1, d + 1))
            row = {"d": d, "N": n, **compare(engines, mlp(d, 1), torch.rand(n, d), names, ("u",),
                                                lambda f: f.laplacian("u"), options.repeats)}
            laplacians.append(row)
            print(f"laplacian d={d:4d} N={n:5d}  forward {row['forward_step_s']:.4f} s  "
                  f"reverse {row['reverse_step_s']:.4f} s", flush=True)
    time_derivatives = []
    n = max(options.points)
    for m in options.outputs if "time" in options.tables else []:
        outputs = tuple(f"u{j}" for j in range(m))
        for k in options.orders:
            def all_outputs(f: Fields, k: int = k) -> Tensor:
                return torch.stack([f.d(name, *["t"] * k) for name in outputs], dim=1)
            row = {"m": m, "k": k, "N": n, **compare(engines, mlp(2, m), torch.rand(n, 2), ("x", "t"), outputs,
                                                       all_outputs, options.repeats)}
            time_derivatives.append(row)
            print(f"d^{k}/dt^{k} m={m:2d} N={n:5d}  forward {row['forward_step_s']:.4f} s  "
                  f"reverse {row['reverse_step_s']:.4f} s", flush=True)
    heat = []
    heat_engines = {"forward_laplacian": ForwardLaplacian(), **engines}
    for d in options.heat_dims if "heat" in options.tables else []:
        for n in options.heat_points:
            space = tuple(f"x_{i}" for i in range(1, d + 1))

            def residual(f: Fields, space: tuple[str, ...] = space) -> Tensor:
                return f.d("u", "t") - f.laplacian("u", space)
            row = {"d": d, "N": n, **compare(heat_engines, mlp(d + 1, 1), torch.rand(n, d + 1), (*space, "t"),
                                                ("u",), residual, options.repeats)}
            heat.append(row)
            print(f"heat d={d:4d} N={n:5d}  " + "  ".join(f"{name} {row[f'{name}_step_s']:.4f} s"
                                                          for name in heat_engines), flush=True)

    output = Path(options.output)
    kept = json.loads(output.read_text()) if output.exists() and set(options.tables) != set(TABLES) else {}
    run = {"laplacian": laplacians, "time_derivatives": time_derivatives, "heat_residual": heat}
    report = {**stamp(), "dtype": "float32", "width": options.width, "depth": options.depth,
              "repeats": options.repeats, "chunk_size": options.chunk_size,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              **{key: run[key] if table in options.tables else kept.get(key, [])
                 for table, key in TABLES.items()}}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    laplacians, time_derivatives, heat = report["laplacian"], report["time_derivatives"], report["heat_residual"]

    print(f"\ntanh MLP, width {options.width}, {options.depth} hidden layers, float32, {report['threads']} thread(s); "
          "median seconds; step = derivative + backward to the parameters")
    print(f"\n1. Laplacian over all d inputs, 1 output (forward chunk_size={options.chunk_size})")
    print(f"{'d':>4s} {'N':>6s} | {'fwd lap':>8s} {'rev lap':>8s} | {'fwd step':>8s} {'rev step':>8s} "
          f"{'rev/fwd':>7s} | {'max |diff|':>10s}")
    for r in laplacians:
        print(f"{r['d']:4d} {r['N']:6d} | {r['forward_derivative_s']:8.4f} {r['reverse_derivative_s']:8.4f} | "
              f"{r['forward_step_s']:8.4f} {r['reverse_step_s']:8.4f} {r['reverse_step_s'] / r['forward_step_s']:7.2f}"
              f" | {r['max_abs_difference']:10.2e}")
    print(f"\n2. d^k u_j / dt^k for all m outputs, d = 2, N = {n}")
    print(f"{'m':>4s} {'k':>3s} | {'fwd der':>8s} {'rev der':>8s} | {'fwd step':>8s} {'rev step':>8s} "
          f"{'rev/fwd':>7s} | {'max |diff|':>10s}")
    for r in time_derivatives:
        print(f"{r['m']:4d} {r['k']:3d} | {r['forward_derivative_s']:8.4f} {r['reverse_derivative_s']:8.4f} | "
              f"{r['forward_step_s']:8.4f} {r['reverse_step_s']:8.4f} {r['reverse_step_s'] / r['forward_step_s']:7.2f}"
              f" | {r['max_abs_difference']:10.2e}")
    print(f"\n3. Heat residual u_t - Δ_x u, inputs x_1 .. x_d, t (fl: ForwardLaplacian; fwd chunk_size="
          f"{options.chunk_size})")
    print(f"{'d':>4s} {'N':>6s} | {'fl der':>8s} {'rev der':>8s} {'fwd der':>8s} | {'fl step':>8s} {'rev step':>8s} "
          f"{'fwd step':>8s} | {'rev/fl':>6s} {'fwd/fl':>6s} | {'max |diff|':>10s}")
    for r in heat:
        print(f"{r['d']:4d} {r['N']:6d} | {r['forward_laplacian_derivative_s']:8.4f} {r['reverse_derivative_s']:8.4f} "
              f"{r['forward_derivative_s']:8.4f} | {r['forward_laplacian_step_s']:8.4f} {r['reverse_step_s']:8.4f} "
              f"{r['forward_step_s']:8.4f} | {r['reverse_step_s'] / r['forward_laplacian_step_s']:6.2f} "
              f"{r['forward_step_s'] / r['forward_laplacian_step_s']:6.2f} | {r['max_abs_difference']:10.2e}")
    print(f"\npeak RSS {report['peak_rss_mib']:.0f} MiB (this run: {', '.join(options.tables)}); wrote {output}")


if __name__ == "__main__":
    main()
