"""The paper-protocol configs (configs/quant/paper) give the four variants of a problem one budget, build, and the
sweep runner trains and scores them (a smoke run: two steps, four Stein pairs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "quant" / "paper"
PROBLEMS = ("poisson2d", "hjb20d", "heat100d")
VARIANTS = ("fp32", "tt", "tt_se", "tt_se_smx")


def budget(config: dict) -> dict:
    """What must not differ between the variants of a problem."""
    model = config["model"]["init_args"]
    return {"problem": model["problem"], "loss_weights": model["loss_weights"], "optimizer": model["optimizer"],
            "lr_scheduler": model["lr_scheduler"], "data": config["data"], "trainer": config["trainer"],
            "fused": model["fused"], "seed": config["seed_everything"],
            "widths": model["net"]["init_args"]["hidden"], "activation": model["net"]["init_args"]["activation"]}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_the_four_variants_share_one_budget_at_the_protocol(problem):
    configs = {v: yaml.safe_load((PAPER / f"{problem}_{v}.yaml").read_text()) for v in VARIANTS}
    budgets = {v: budget(c) for v, c in configs.items()}
    assert all(b == budgets["fp32"] for b in budgets.values())
    trainer, scheduler = budgets["fp32"]["trainer"], budgets["fp32"]["lr_scheduler"]
    # lr 1e-3 decayed linearly to 0 every step: one step an epoch, fresh points every step
    assert scheduler["class_path"].endswith("LinearLR")
    assert scheduler["init_args"] == {"start_factor": 1.0, "end_factor": 0.0, "total_iters": trainer["max_steps"]}
    assert budgets["fp32"]["data"]["init_args"]["steps_per_epoch"] == 1
    assert budgets["fp32"]["data"]["init_args"]["resample_every"] == 1
    assert trainer["max_steps"] == {"poisson2d": 1000, "hjb20d": 10000, "heat100d": 1000}[problem]
    stein = [c["model"]["init_args"]["derivatives"]["init_args"] for v, c in configs.items() if "se" in v]
    assert stein[0]["samples"] == stein[1]["samples"] == {"poisson2d": 512, "hjb20d": 512, "heat100d": 1024}[problem]
    smx = configs["tt_se_smx"]["model"]["init_args"]["net"]["init_args"]["quantizer"]["init_args"]
    assert smx == {"bits": 8, "grad_bits": 12, "block": 4, "input_bits": 12} and stein[1]["diffquant"]


def test_every_paper_config_builds_its_model():
    from lightning_pde import registry
    from lightning_pde.cli import LPDECLI
    from lightning_pde.quant import SMXLinear, has_quantized_layers

    registry.load_all()
    for path in sorted(PAPER.glob("*.yaml")):
        cli = LPDECLI(run=False, args=["--config", str(path), "--trainer.logger=false",
                                       "--trainer.default_root_dir=/nonexistent-unused"])
        quantized = has_quantized_layers(cli.model.net)
        assert quantized == path.stem.endswith("_smx"), path.name
        if quantized:
            first = cli.model.net.layers[0]
            hook = first.layer_input_quant if hasattr(first, "layer_input_quant") else first
            assert (hook.bits if not isinstance(first, SMXLinear) else first.input_bits) == 12


def test_the_sweep_runner_trains_and_scores_every_row_in_smx_and_float(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import quant_paper_sweep
    finally:
        sys.path.pop(0)
    output = tmp_path / "sweep.json"
    quant_paper_sweep.main(["--problems", "poisson2d", "--max-steps", "2", "--stein-samples", "4",
                            "--output", str(output)])
    report = json.loads(output.read_text())
    assert {"commit", "dirty", "date", "machine", "threads"} <= set(report)
    assert "INT12" in report["first_layer_input"] and report["overrides"]["max_steps"] == 2
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {*VARIANTS, "brevitas_int8"}
    for row in rows.values():
        assert row["steps"] == 2 and 0 < row["rel_l2_smx_inference"] < 10 and 0 < row["rel_l2_float_inference"] < 10
    # the full method is scored as trained in SMX; the float rows' SMX score is another computation of other numbers
    assert rows["tt_se_smx"]["rel_l2_smx_inference"] == rows["tt_se_smx"]["rel_l2_as_trained"]
    assert rows["fp32"]["rel_l2_smx_inference"] != rows["fp32"]["rel_l2_float_inference"]
    assert rows["brevitas_int8"]["rel_l2_as_trained"] != rows["brevitas_int8"]["rel_l2_float_inference"]
    assert rows["tt"]["compression"] > 10 and rows["tt_se_smx"]["energy_ratio_to_fp32_cost_model"] > 1
