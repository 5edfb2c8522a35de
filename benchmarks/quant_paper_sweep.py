"""Fully-quantized training at the paper's protocol (Lu et al. 2025, arXiv 2512.09202): the twelve configs of
configs/quant/paper/ (Poisson2D, HJB(20), Heat(100) x FP32 dense autograd, TT, TT + Stein, TT + Stein + DiffQuant +
SMX) and the Brevitas INT8 recipe (configs/quant/poisson2d_brevitas_int8.yaml), trained one after the other in this
one process, one thread, then scored.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quant_paper_sweep.py                 # the whole sweep
    .venv/bin/python benchmarks/quant_paper_sweep.py --accelerator gpu                 # training on a GPU
    .venv/bin/python benchmarks/quant_paper_sweep.py --max-steps 1 --stein-samples 4 --output /tmp/s.json  # smoke

Every row is scored twice on the same trained weights: in SMX inference (INT8 weights and activations, the input
coordinates at INT12, float accumulation, bias and output: as trained for the full method, post-training
quantization with the same format for the others) and in float inference (a quantized model's master weights run
in float32, lightning_pde.quant.full_precision). The first layer's input coordinates are SMX INT12 (``SMXQuantizer(
input_bits=12)``), the choice stated in docs/quant.md and in the JSON. Writes one JSON (provenance by
benchmarks/provenance.py, the protocol, every row, the cost model's ratios and assumptions) and prints a table.
Times per step are the machine's of that moment; errors do not depend on it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from provenance import stamp  # noqa: E402
from quant import relative_l2  # noqa: E402  (benchmarks/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ("poisson2d", "hjb20d", "heat100d")
VARIANTS = ("fp32", "tt", "tt_se", "tt_se_smx")
#: rows beyond the twelve: (problem, variant) -> config
EXTRA = {("poisson2d", "brevitas_int8"): "configs/quant/poisson2d_brevitas_int8.yaml"}
#: the format every row is also scored in (the full method's)
SMX_FORMAT = {"bits": 8, "grad_bits": 12, "block": 4, "input_bits": 12}
FIRST_LAYER_INPUT = ("SMX INT12: the first layer's input coordinates are quantized with 12-bit elements "
                     "(SMXQuantizer(input_bits=12)); its weights and every other operand are INT8")


def config_path(problem: str, variant: str) -> str:
    return EXTRA.get((problem, variant), f"configs/quant/paper/{problem}_{variant}.yaml")


def train(config: str, accelerator: str, max_steps: int | None, stein_samples: int | None, workdir: str):
    """Build the config's model and data through the lpde CLI (nothing run) and fit; (model, seconds, steps)."""
    from lightning_pde.cli import LPDECLI

    args = ["--config", config, f"--trainer.default_root_dir={workdir}", f"--trainer.accelerator={accelerator}",
            "--trainer.devices=1", "--trainer.enable_progress_bar=false", "--trainer.logger=false",
            "--trainer.enable_checkpointing=false", "--trainer.limit_val_batches=0",
            "--trainer.enable_model_summary=false"]
    if max_steps is not None:  # the schedule still decays to 0 over the (shorter) run
        args += [f"--trainer.max_steps={max_steps}",
                 f"--model.init_args.lr_scheduler.init_args.total_iters={max_steps}"]
    cli = LPDECLI(run=False, args=args)
    model = cli.model
    if stein_samples is not None and hasattr(model.derivatives, "samples"):
        model.derivatives.samples = stein_samples
    start = time.perf_counter()
    cli.trainer.fit(model, datamodule=cli.datamodule)
    return model, time.perf_counter() - start, cli.trainer.global_step


def score(model) -> dict:
    """Relative L2 error on the problem's evaluation points: as trained, in SMX inference and in float inference."""
    from lightning_pde.quant import SMXQuantizer, convert_layers, full_precision, has_quantized_layers

    model.eval().cpu()
    grid = model.problem.evaluation_grid()
    trained = relative_l2(model, grid)
    with full_precision(model):
        floating = relative_l2(model, grid)
    smx_trained = any(type(m).__name__ == "SMXLinear" or type(getattr(m, "weight_quant", None)).__name__ ==
                      "SMXFakeQuant" for m in model.modules())
    if smx_trained:
        smx = trained
    else:  # the same weights, quantized after training into the full method's format
        ptq = copy.deepcopy(model)
        with full_precision(ptq):  # a brevitas model: SMX in place of its own INT8, not on top of it
            convert_layers(ptq.net, SMXQuantizer(**SMX_FORMAT))
            smx = relative_l2(ptq, grid)
    return {"rel_l2_as_trained": trained, "rel_l2_smx_inference": smx, "rel_l2_float_inference": floating,
            "trained_quantized": has_quantized_layers(model.net), "smx_inference_is": "as trained" if smx_trained
            else "post-training SMX of the trained weights"}


def cost(model) -> dict:
    from lightning_pde.derivatives import Stein
    from lightning_pde.quant.cost_model import step_cost

    problem, net, engine = model.problem, model.net, model.derivatives
    sizes = {name: c.n_points for name, c in model.conditions.items()}
    stein = isinstance(engine, Stein)
    # SMX training is INT8 forward, INT12 x INT8 backward; brevitas' INT8 recipe has float gradients, charged FP32
    smx = type(getattr(net, "quantizer", None)).__name__ == "SMXQuantizer"
    space = [n for n in problem.input_names if n != "t"]
    return step_cost(net, len(space), sizes.get("pde", 0), sum(v for k, v in sizes.items() if k != "pde"),
                     "stein" if stein else "autograd", engine.samples if stein else 0, smx)


def run_row(problem: str, variant: str, accelerator: str, max_steps: int | None, stein_samples: int | None) -> dict:
    torch.manual_seed(0)
    config = config_path(problem, variant)
    with tempfile.TemporaryDirectory() as workdir:
        model, seconds, steps = train(config, accelerator, max_steps, stein_samples, workdir)
    net = model.net
    row = {"problem": problem, "variant": variant, "config": config, "steps": steps, "fit_seconds": seconds,
           "seconds_per_step": seconds / max(steps, 1), "parameters": sum(p.numel() for p in net.parameters()),
           "compression": net.compression_ratio() if callable(getattr(net, "compression_ratio", None)) else 1.0,
           "stein_samples": getattr(model.derivatives, "samples", None),
           "points_per_step": {name: c.n_points for name, c in model.conditions.items()}}
    step = cost(model)
    row.update(score(model))
    row["cost"], row["_cost"] = step.as_dict(), step
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--variants", nargs="+", default=[*VARIANTS, "brevitas_int8"],
                        choices=[*VARIANTS, "brevitas_int8"])
    parser.add_argument("--accelerator", default="cpu", help="where the runs train (cpu, gpu); scoring is on the CPU")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="train every row this many steps instead of the protocol's (a smoke run)")
    parser.add_argument("--stein-samples", type=int, default=None,
                        help="Stein pairs for the Stein rows instead of the protocol's (a smoke run)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "quant_paper_sweep.json")
    options = parser.parse_args(argv)
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    from lightning_pde import registry
    from lightning_pde.quant.cost_model import assumptions

    registry.load_all()
    runs = [(p, v) for p in options.problems for v in options.variants
            if v in VARIANTS or (p, v) in EXTRA]
    report = {**stamp(threads), "accelerator": options.accelerator,
              "protocol": "configs/quant/paper (docs/quant.md); identical budgets across a problem's variants",
              "overrides": {"max_steps": options.max_steps, "stein_samples": options.stein_samples},
              "smx_inference_format": SMX_FORMAT, "first_layer_input": FIRST_LAYER_INPUT,
              "cost_model_assumptions": assumptions(), "rows": []}
    options.output.parent.mkdir(parents=True, exist_ok=True)
    costs = {}
    for problem, variant in runs:
        row = run_row(problem, variant, options.accelerator, options.max_steps, options.stein_samples)
        costs[problem, variant] = row.pop("_cost")
        base = costs.get((problem, "fp32"))
        if base is not None:  # cost-model estimates, not measured speed-ups
            row.update({f"{k}_to_fp32_cost_model": v for k, v in costs[problem, variant].ratios_to(base).items()})
        fp32 = next((r for r in report["rows"] if r["problem"] == problem and r["variant"] == "fp32"), None)
        if fp32 is not None:
            row["smx_error_over_fp32"] = row["rel_l2_smx_inference"] / fp32["rel_l2_as_trained"]
        report["rows"].append(row)
        print(f"{problem:10s} {variant:14s} SMX {row['rel_l2_smx_inference']:.3e}  float "
              f"{row['rel_l2_float_inference']:.3e}  {row['seconds_per_step'] * 1e3:.0f} ms/step", flush=True)
        options.output.write_text(json.dumps(report, indent=2))  # a sweep cut off keeps its finished rows
    print(f"\n{'problem':10s} {'variant':14s} {'steps':>6s} {'SMX inf':>9s} {'float inf':>9s} {'SMX/FP32':>8s} "
          f"{'params':>8s} {'compr':>6s} {'ms/step':>8s} {'energy x':>8s} {'MACs x':>7s}")
    nan = float("nan")
    for r in report["rows"]:
        print(f"{r['problem']:10s} {r['variant']:14s} {r['steps']:6d} {r['rel_l2_smx_inference']:9.2e} "
              f"{r['rel_l2_float_inference']:9.2e} {r.get('smx_error_over_fp32', nan):8.2f} {r['parameters']:8d} "
              f"{r['compression']:6.1f} {r['seconds_per_step'] * 1e3:8.0f} "
              f"{r.get('energy_ratio_to_fp32_cost_model', nan):8.1f} {r.get('mac_ratio_to_fp32_cost_model', nan):7.1f}")
    print(f"\nSMX/FP32: the row's SMX-inference error over the FP32 dense baseline's. First layer input: "
          f"{FIRST_LAYER_INPUT}.\nenergy x / MACs x: cost-model estimates, not measured speed-ups; assumptions:")
    for line in assumptions():
        print(f"  - {line}")
    print(f"\nwrote {options.output} ({threads} thread(s), {options.accelerator})")
    return report


if __name__ == "__main__":
    main()
