"""configs/quant end to end through the CLI, SMXPrecision selected by short name (also under DDP), checkpoints of
quantized TT networks, and the cost model."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lightning_pde
from lightning_pde.cli import main
from lightning_pde.nn import MLP, TTMLP
from lightning_pde.quant import SMXLinear, SMXQuantizer, step_cost

ROOT = Path(__file__).resolve().parents[1]
QUANT = ROOT / "configs" / "quant"
COMMON = ["--trainer.enable_progress_bar=false", "--data.init_args.steps_per_epoch=3", "--trainer.max_steps=3",
          "--trainer.check_val_every_n_epoch=1", "--trainer.limit_val_batches=1", "--trainer.logger=false"]
TINY = {
    "poisson2d": ["--model.init_args.problem.init_args.n_pde=16", "--model.init_args.problem.init_args.n_boundary=8"],
    "hjb20d": ["--model.init_args.problem.init_args.n_pde=8", "--model.init_args.problem.init_args.n_terminal=4",
               "--model.init_args.problem.init_args.n_boundary=4",
               "--model.init_args.problem.init_args.n_evaluation=64"],
    "heat100d": ["--model.init_args.problem.init_args.n_pde=8", "--model.init_args.problem.init_args.n_initial=4",
                 "--model.init_args.problem.init_args.n_boundary=4"],
}
SMALL_TT = {
    "poisson2d": ("[16,16,16]", "[[[1,1,1,2],[2,2,2,2]],[[2,2,2,2],[2,2,2,2]],[[2,2,2,2],[2,2,2,2]],[]]"),
    "hjb20d": ("[16,16]", "[[[1,1,3,7],[2,2,2,2]],[[2,2,2,2],[2,2,2,2]],[]]"),
    "heat100d": ("[16,16,16]", "[[[1,1,1,101],[2,2,2,2]],[[2,2,2,2],[2,2,2,2]],[[2,2,2,2],[2,2,2,2]],[]]"),
}


def tiny(config: Path) -> list[str]:
    problem, variant = config.stem.split("_", 1)
    args = [*COMMON, *TINY[problem]]
    hidden, shapes = SMALL_TT[problem]
    args.append(f"--model.init_args.net.init_args.hidden={hidden}")
    dense = variant == "fp32" or variant.startswith("brevitas")  # brevitas quantizes a dense MLP
    if not dense:
        args.append(f"--model.init_args.net.init_args.tt_shapes={shapes}")
    if "se" in variant:
        args.append("--model.init_args.derivatives.init_args.samples=4")
    return args


#: Poisson's four variants run by default; HJB(20) and Heat(100) (slower, the same code paths) with -m slow
CONFIG_CASES = [pytest.param(c, id=c.stem, marks=() if c.stem.startswith("poisson") else pytest.mark.slow)
                for c in sorted(QUANT.glob("*.yaml"))]


@pytest.mark.parametrize("config", CONFIG_CASES)
def test_every_quant_config_runs_end_to_end(config, tmp_path):
    assert main(["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}", *tiny(config)]) == 0
    (ckpt,) = tmp_path.rglob("last.ckpt")  # every run leaves last.ckpt, beside any epoch checkpoint
    model = lightning_pde.load(ckpt)
    dense = config.stem.endswith("fp32") or "brevitas" in config.stem
    assert type(model.net).__name__ == ("MLP" if dense else "TTMLP")
    if config.stem.endswith("smx"):
        assert isinstance(model.net.quantizer, SMXQuantizer) and isinstance(model.net.layers[-1], SMXLinear)


def lpde(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1"}
    return subprocess.run([sys.executable, "-m", "lightning_pde", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


@pytest.mark.slow  # overlaps tests/test_ddp.py's per-family DDP runs; kept for make test-slow
def test_smx_precision_plugin_by_short_name_under_ddp(tmp_path):
    config = QUANT / "poisson2d_tt_se.yaml"
    # without DiffQuant, Stein under SMX would estimate from rounded-away perturbations: refused, so switch it on
    result = lpde("fit", "--config", str(config), *tiny(config), "--trainer.plugins=SMXPrecision",
                  "--model.init_args.derivatives.init_args.diffquant=true",
                  "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout


def test_mlp_quantizer_is_additive():
    torch.manual_seed(0)
    plain = MLP([8], in_features=2, out_features=1)
    assert "quantizer" in plain.init_args and plain.init_args["quantizer"] is None
    assert all(type(layer) is torch.nn.Linear for layer in plain.layers)
    with pytest.raises(ValueError, match="quantizer"):
        MLP([8], quantizer="int8")


def test_cost_model_counts_by_precision():
    net = TTMLP(hidden=[512, 512], tt_shapes=[[[1, 1, 3, 7], [8, 4, 4, 4]], [[4, 4, 4, 8], [8, 4, 4, 4]], None],
                in_features=21, out_features=1)
    dense = MLP([512, 512], in_features=21, out_features=1)
    base = step_cost(dense, 20, 100, 200, "autograd")
    full = step_cost(net, 20, 100, 200, "stein", samples=64, smx=True)
    forward_row = 21 * 512 + 512 * 512 + 512
    assert base.macs["fp32"] == 3 * forward_row * (100 * (3 + 4 * 20) + 200)
    assert full.macs["fp32"] == 0 and full.macs["int12x8"] == 2 * full.macs["int8"]
    # 2.5x fewer MACs, each ~4x cheaper (narrow multiply, FP32 accumulate): ~10x
    assert base.energy_pj / full.energy_pj > 5 and base.weight_bytes / full.weight_bytes > 50
    with pytest.raises(ValueError, match="engine"):
        step_cost(dense, 20, 1, 1, "finite")


def test_cost_model_charges_the_wide_accumulator_and_names_its_ratios():
    from lightning_pde.quant import cost_model

    # the numerics multiply narrow operands and sum in float32: every quantized MAC pays an FP32 add
    assert cost_model.ACCUMULATOR == "fp32"
    assert cost_model.ENERGY_PJ["int8"] == pytest.approx(0.2 + 0.9)
    assert cost_model.ENERGY_PJ["int12x8"] == pytest.approx(0.3 + 0.9)
    assert cost_model.ENERGY_PJ["fp32"] == pytest.approx(3.7 + 0.9)
    dense = MLP([64, 64], in_features=3, out_features=1)
    base = step_cost(dense, 2, 10, 10, "autograd")
    smx = step_cost(dense, 2, 10, 10, "autograd", smx=True)
    ratios = smx.ratios_to(base)
    assert set(ratios) == {"energy_ratio", "mac_ratio", "memory_ratio"}
    assert ratios["mac_ratio"] == 1.0  # same operations, cheaper ones
    assert ratios["energy_ratio"] == pytest.approx(4.6 / ((1.1 + 2 * 1.2) / 3))
    text = " ".join(cost_model.assumptions())
    assert "FP32 accumulator" in text and "not a measured speed-up" in text.replace("neither is", "not")


def test_validation_scores_in_chunks_bounded_by_the_engines_rows_whatever_the_batch():
    # Stein evaluates 2K + 1 network rows a point: a 10000-point evaluation batch with K = 128 asked for 6.9 GB at
    # once (configs/quant/hjb20d_tt_se_smx.yaml). Scoring is chunked by rows, and chunking changes no metric.
    from lightning_pde.derivatives import Stein
    from lightning_pde.modules import PINN
    from lightning_pde.problems import Poisson2D

    torch.manual_seed(0)
    points = torch.rand(95, 2)
    batch = {"points": points, "values": Poisson2D().exact(points).reshape(-1, 1)}
    scores = []
    for evaluation_rows in (170, 10**6):
        torch.manual_seed(1)  # the same network both times
        model = PINN(Poisson2D(), MLP([8]), derivatives=Stein(samples=8), evaluation_rows=evaluation_rows)
        sizes = []
        fields = model.fields
        model.fields = lambda x: sizes.append(len(x)) or fields(x)
        model.log = lambda *args, **kwargs: None
        model.validation_step(batch, 0)
        scores.append(model.val_rel_l2.compute())
        assert sum(sizes) == 95
        assert max(sizes) == min(95, evaluation_rows // 17)  # 17 rows a point: 2K + 1 with K = 8
    torch.testing.assert_close(scores[0], scores[1])
