"""A paper-style cost model of one PINN training step: multiply-accumulates (MACs) by operand precision, and the
MAC-energy ratio, operation-count ratio and memory saving they imply over the FP32 dense autograd baseline (the
kind of estimate Lu et al. 2025, arXiv 2512.09202, make for their PINTA accelerator; we emulate the numerics and do
NOT claim hardware speed: no ratio here is a measured speed-up).

Assumptions (stated, not measured):

- Layer MACs: a dense layer costs rows * in * out; a TTLinear its contraction plus the merging of its PRS groups
  (:meth:`~lightning_pde.nn.TTLinear.macs`). Element-wise work (activations, losses) is ignored.
- Reverse-mode autograd with an exact Laplacian over d inputs, per interior row: the forward F, the first-order
  backward 2F, and one second-order backward per input through the double graph, 4F each; the parameter backward
  through that whole graph costs twice its forward: 3 (F + 2F + 4dF). Conditions without second derivatives
  (boundary, initial) cost 3 (F + 2F) if they need first derivatives, else 3F; we charge 3F.
- Stein's estimator: (2K + 1) forward rows per interior point (DiffQuant's shared base path is counted as a full
  forward, an upper bound), and 2x that in the parameter backward: 3 (2K + 1) F.
- Precision of each MAC: FP32 everywhere for FP32 runs. SMX runs: forward GEMMs INT8 x INT8; the two backward GEMMs
  INT12 (gradient) x INT8 (saved weight/activation).
- Accumulation: every MAC adds into a wide FP32 accumulator, as the emulated numerics do (``smx_linear`` multiplies
  the quantized operands and sums in float32, MX hardware accumulates wide). So a quantized MAC is a narrow
  multiply plus an FP32 add, not a narrow add.
- Energy per MAC (Horowitz, ISSCC 2014, 45 nm: FP32 mult 3.7 pJ, FP32 add 0.9 pJ, INT8 mult 0.2 pJ; an integer
  multiplier scaled by the product of operand widths, INT12 x INT8 0.2 * 96/64 = 0.3 pJ): FP32 3.7 + 0.9 = 4.6 pJ,
  INT8 x INT8 0.2 + 0.9 = 1.1 pJ, INT12 x INT8 0.3 + 0.9 = 1.2 pJ.
- What the ratios are: ``energy ratio`` = baseline MAC energy / method MAC energy (the MACs only: no memory traffic,
  no element-wise work); ``MAC ratio`` = baseline MACs / method MACs (an operation count). Neither is a measured
  speed-up; a wall-clock speed-up would further assume a MAC array whose throughput scales with them.
- Memory: trainable parameters at 32 bits (FP32 master copies) plus one stored copy of each weight at the operand
  precision (SMX: 8 bits + 8-bit shared exponent per 16 elements) plus saved activations for the backward pass at
  the operand precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

#: picojoules per multiply by operands (FP32; INT8 x INT8; INT12 x INT8), see the module docstring
MULTIPLY_PJ = {"fp32": 3.7, "int8": 0.2, "int12x8": 0.2 * 96 / 64}
#: the accumulator every MAC adds into (the numerics' float32 sum) and the energy of one add into it
ACCUMULATOR, ACCUMULATE_PJ = "fp32", 0.9
#: picojoules per multiply-accumulate: a multiply plus an add into the wide accumulator
ENERGY_PJ = {kind: multiply + ACCUMULATE_PJ for kind, multiply in MULTIPLY_PJ.items()}


def assumptions() -> list[str]:
    """The cost model's assumptions, one line each, for a benchmark to print and store beside its numbers."""
    return [
        "MACs counted per GEMM; element-wise work and memory traffic ignored",
        f"every MAC accumulates into a {ACCUMULATOR.upper()} accumulator ({ACCUMULATE_PJ} pJ an add), as the "
        f"emulated numerics do",
        "energy per MAC (Horowitz 2014, 45 nm): " + ", ".join(f"{k} {v:.2f} pJ" for k, v in ENERGY_PJ.items()),
        "SMX training: forward GEMMs INT8 x INT8, backward GEMMs INT12 x INT8; FP32 runs: FP32 everywhere",
        "autograd exact Laplacian: 3 (F + 2F + 4dF) per interior row; Stein: 3 (2K + 1) F per interior point",
        "energy ratio = baseline MAC energy / method MAC energy; MAC ratio = baseline MACs / method MACs; "
        "neither is a measured speed-up",
    ]


@dataclass
class StepCost:
    """MACs of one training step by precision, the energy they imply and the memory of weights and activations."""

    macs: dict[str, int]
    energy_pj: float
    weight_bytes: float
    activation_bytes: float

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    def ratios_to(self, baseline: "StepCost") -> dict[str, float]:
        """What `baseline` costs over what this step costs: ``energy_ratio`` (MAC energy), ``mac_ratio`` (operation
        count) and ``memory_ratio`` (weights plus saved activations); estimates, not measured speed-ups."""
        return {"energy_ratio": baseline.energy_pj / self.energy_pj,
                "mac_ratio": baseline.total_macs / self.total_macs,
                "memory_ratio": ((baseline.weight_bytes + baseline.activation_bytes)
                                 / (self.weight_bytes + self.activation_bytes))}

    def as_dict(self) -> dict:
        return {**asdict(self), "total_macs": self.total_macs}


def layer_macs(layer: nn.Module, rows: int) -> int:
    macs = getattr(layer, "macs", None)
    if callable(macs):
        return int(macs(rows))
    return rows * layer.in_features * layer.out_features


def step_cost(net: nn.Module, n_inputs: int, n_interior: int, n_other: int, engine: str, samples: int = 0,
              smx: bool = False) -> StepCost:
    """Cost of one training step of `net` (an MLP/TTMLP with ``layers``) under the assumptions above.

    Args:
        net: the network.
        n_inputs: d, the inputs the Laplacian sums over (autograd engine).
        n_interior: interior (PDE) points per step.
        n_other: boundary/initial points per step.
        engine: ``"autograd"`` or ``"stein"``.
        samples: antithetic pairs K (Stein).
        smx: whether the GEMMs run in SMX (INT8 forward, INT12 x INT8 backward) or FP32.

    Raises:
        ValueError: for an unknown engine.
    """
    if engine not in ("autograd", "stein"):
        raise ValueError(f"step_cost: engine must be 'autograd' or 'stein', got {engine!r}")
    layers = [layer for layer in net.layers]
    forward_row = sum(layer_macs(layer, 1) for layer in layers)
    rows_forward = (2 * samples + 1) * n_interior + n_other if engine == "stein" else n_interior + n_other
    if engine == "stein":
        forward = forward_row * rows_forward
        backward = 2 * forward
    else:
        interior_graph = forward_row * n_interior * (1 + 2 + 4 * n_inputs)
        forward = interior_graph + forward_row * n_other
        backward = 2 * forward
    if smx:
        macs = {"int8": forward, "int12x8": backward, "fp32": 0}
    else:
        macs = {"fp32": forward + backward, "int8": 0, "int12x8": 0}
    energy = sum(ENERGY_PJ[k] * v for k, v in macs.items())
    parameters = sum(p.numel() for p in net.parameters())
    weight_bits = 32 + ((8 + 8 / 16) if smx else 0)
    widths = sum(layer.in_features for layer in layers)
    activation_bits = (8 + 8 / 16) if smx else 32
    saved_rows = rows_forward if engine == "stein" else rows_forward * (1 + n_inputs)
    return StepCost(macs=macs, energy_pj=energy, weight_bytes=parameters * weight_bits / 8,
                    activation_bytes=saved_rows * widths * activation_bits / 8)
