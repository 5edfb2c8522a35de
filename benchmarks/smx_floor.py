"""How much error does SMX inference alone add? Train a float config (default: the TT Poisson network of
configs/quant/poisson2d_tt.yaml), then score its trained weights with SMX fake quantization switched on after
training, in parts and at several bit widths: the floor that quantized inference puts under any quantized training
of that network.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/smx_floor.py                     # Poisson TT, 1500 steps
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/smx_floor.py --config configs/quant/hjb20d_fp32.yaml

Rows: weights and activations at 8 / 10 / 12 bits; INT8 in 1x1 (a per-element exponent), 2x2, 8x8 and 16x16
tiles instead of the shipped 4x4; INT8 weights only; INT8 activations only; INT8 with the first or
the last layer left in float; INT8 with the prediction smoothed over 2K Gaussian perturbations (sigma 0.01, He et
al.'s prediction of a Stein-trained network). Writes benchmarks/results/smx_floor.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from lightning_pde import registry
from lightning_pde.cli import LPDECLI
from lightning_pde.nn.tt_linear import TTLinear
from lightning_pde.quant import SMXFakeQuant
from provenance import stamp

ROOT = Path(__file__).resolve().parent.parent


class FakeQuantLinear(nn.Module):
    """A float nn.Linear whose weight and/or input are SMX fake-quantized (either may be left in float)."""

    def __init__(self, linear: nn.Linear, weight_bits: int | None, input_bits: int | None, block: int = 4) -> None:
        super().__init__()
        self.linear = linear
        self.weight_quant = SMXFakeQuant(weight_bits, block=block) if weight_bits else None
        self.input_quant = SMXFakeQuant(input_bits, block=block) if input_bits else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.linear.weight if self.weight_quant is None else self.weight_quant(self.linear.weight)
        x = x if self.input_quant is None else self.input_quant(x)
        return nn.functional.linear(x, weight, self.linear.bias)


def quantized(model: nn.Module, weight_bits: int | None, input_bits: int | None, skip: tuple[int, ...] = (),
              block: int = 4) -> nn.Module:
    """A copy of `model` whose network layers (except the indices in `skip`, negative from the end) are SMX
    fake-quantized in `block` x `block` tiles: weights at `weight_bits`, layer inputs (and TT intermediates) at
    `input_bits`; None: float."""
    model = copy.deepcopy(model)
    layers = model.net.layers
    for index, layer in enumerate(layers):
        if index in skip or index - len(layers) in skip:
            continue
        if isinstance(layer, TTLinear):
            layer.set_quantizers(SMXFakeQuant(weight_bits, block=block) if weight_bits else None,
                                 SMXFakeQuant(input_bits, block=block) if input_bits else None)
        else:
            layers[index] = FakeQuantLinear(layer, weight_bits, input_bits, block)
    return model


def relative_l2(model: nn.Module, grid, pairs: int = 0, sigma: float = 0.01) -> float:
    """Relative L2 error on the evaluation grid; with `pairs` > 0 the prediction is the mean over +-delta_k,
    delta_k ~ N(0, sigma^2 I) (the smoothed network)."""
    generator = torch.Generator().manual_seed(0)
    predictions = []
    with torch.no_grad():
        for chunk in grid.points.to(torch.float32).split(512):
            if pairs:
                delta = torch.randn(chunk.shape[0], pairs, chunk.shape[1], generator=generator) * sigma
                points = torch.cat([chunk[:, None] + delta, chunk[:, None] - delta], 1).reshape(-1, chunk.shape[1])
                predictions.append(model(points).reshape(chunk.shape[0], 2 * pairs, -1).mean(1))
            else:
                predictions.append(model(chunk))
    prediction = torch.cat(predictions)
    exact = grid.values.to(prediction.dtype).reshape(prediction.shape)
    return float((prediction - exact).norm() / exact.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quant/poisson2d_tt.yaml")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "smx_floor.json"))
    options = parser.parse_args()
    torch.set_num_threads(1)
    registry.load_all()
    with tempfile.TemporaryDirectory() as workdir:
        cli = LPDECLI(run=False, args=[
            "--config", options.config, f"--trainer.default_root_dir={workdir}", f"--trainer.max_steps={options.steps}",
            "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false", "--trainer.logger=false",
            "--trainer.enable_checkpointing=false", "--trainer.limit_val_batches=0",
            "--trainer.enable_model_summary=false"])
        start = time.perf_counter()
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        fit_seconds = time.perf_counter() - start
    model = cli.model.eval()
    grid = model.problem.evaluation_grid()
    rows = {"float (as trained)": relative_l2(model, grid)}
    for bits in (8, 10, 12):
        rows[f"INT{bits} weights + activations"] = relative_l2(quantized(model, bits, bits), grid)
    for block in (1, 2, 8, 16):  # the tile side (shipped: 4); 1 is a per-element exponent
        rows[f"INT8 weights + activations, {block} x {block} tiles"] = relative_l2(quantized(model, 8, 8, block=block), grid)
    rows["INT8 weights only"] = relative_l2(quantized(model, 8, None), grid)
    rows["INT8 activations only"] = relative_l2(quantized(model, None, 8), grid)
    rows["INT8, first layer float"] = relative_l2(quantized(model, 8, 8, skip=(0,)), grid)
    rows["INT8, last layer float"] = relative_l2(quantized(model, 8, 8, skip=(-1,)), grid)
    rows["INT8, prediction smoothed (K = 32 pairs)"] = relative_l2(quantized(model, 8, 8), grid, pairs=32)
    report = {**stamp(1), "config": options.config, "steps": options.steps, "fit_seconds": fit_seconds,
              "rel_l2": rows}
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(json.dumps(report, indent=2))
    print(f"\n{options.config}, {options.steps} steps (fit {fit_seconds:.0f} s, 1 thread)")
    print(f"{'inference':42s} {'rel L2':>9s} {'x float':>8s}")
    for name, value in rows.items():
        print(f"{name:42s} {value:9.2e} {value / rows['float (as trained)']:8.1f}")
    print(f"\nwrote {options.output}")


if __name__ == "__main__":
    main()
