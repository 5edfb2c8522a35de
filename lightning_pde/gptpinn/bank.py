"""Reduced fields: u_n = sum_i c_i Psi_i and its derivatives from precomputed neuron columns (GPT-PINN,
arXiv 2303.14878, Sec. 2: derivatives of u_n are linear in c, so D u_n = (D Psi) c)."""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

from lightning_pde.problems import Problem


class ExactNeuron(torch.nn.Module):
    """A "neuron" that is `problem`'s exact solution, with fields by autograd like a trained PINN's: a bank of these
    measures the reduced model's own accuracy, free of neuron training error (tests, ``benchmarks/gptpinn.py
    --exact-neurons``)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__()
        self.problem = problem

    def forward(self, x: Tensor) -> Tensor:
        return self.problem.exact(x)

    def fields(self, x: Tensor):
        from lightning_pde.derivatives import Autograd

        return Autograd().fields(self, x, self.problem.input_names, self.problem.output_names)


def field_keys(problem: Problem) -> list[str]:
    """The fields a neuron bank stores: each output, its first and pure second derivatives in every input."""
    keys = []
    for out in problem.output_names:
        keys.append(out)
        keys += [f"{out}_{a}" for a in problem.input_names]
        keys += [f"{out}_{a}{a}" for a in problem.input_names]
    return keys


class ReducedFields:
    """Fields of the reduced model at one point set, read like :class:`~lightning_pde.derivatives.Fields`.

    `columns[key]` is (N, n) (neuron i's field `key` at the points), `c` is (M, n): ``f[key]`` is (M, N). Inputs
    (``f["x"]``) are (N,) and broadcast. ``f.at(...)`` returns the fields at the shifted copy of a periodic set.
    """

    def __init__(self, columns: dict[str, Tensor], x: Tensor, input_names: tuple[str, ...], c: Tensor,
                 shifted: ReducedFields | None = None) -> None:
        self.columns, self.x, self.input_names, self.c, self.shifted = columns, x, input_names, c, shifted

    def __getitem__(self, key: str) -> Tensor:
        if key in self.input_names:
            return self.x[:, self.input_names.index(key)]
        if key not in self.columns:
            raise KeyError(f"GPTPINN: the neuron bank has no field {key!r} (it stores {sorted(self.columns)})")
        return self.c @ self.columns[key].T

    @property
    def u(self) -> Tensor:
        return self["u"]

    def at(self, x: Tensor) -> ReducedFields:
        if self.shifted is None:
            raise KeyError("GPTPINN: this point set has no shifted (periodic) copy in the neuron bank")
        return self.shifted


def batched_conditions(problem: Problem, params: Tensor) -> dict:
    """The problem's conditions with its parameters replaced by columns (M, 1) of `params`, so that one residual
    call evaluates all M parameters at once. The problem is copied without running its constructor's checks, which
    take scalars; the residual formulas only combine the parameters arithmetically with (M, N) fields."""
    shell = copy.copy(problem)
    for j, name in enumerate(problem.parameter_names):
        setattr(shell, name, params[:, j:j + 1])
    return shell.conditions()


def training_grid(owner: str, names: tuple[str, ...], parameter_grid: dict) -> Tensor:
    """The training set Xi_train (M, p): a tensor grid of one axis per parameter in `names`, each given as
    ``[low, high, count]`` (linspace) or ``[low, high, count, "log"]`` (geometric, low > 0) in `parameter_grid`."""
    if not isinstance(parameter_grid, dict) or sorted(parameter_grid) != sorted(names):
        raise ValueError(f"{owner}: parameter_grid must map each of {list(names)} to [low, high, count], "
                         f"got {parameter_grid!r}")
    axes = []
    for name in names:
        spec = parameter_grid[name]
        spacing = spec[3] if isinstance(spec, (list, tuple)) and len(spec) == 4 else "linear"
        numbers = spec[:3] if isinstance(spec, (list, tuple)) else spec
        if (not isinstance(spec, (list, tuple)) or len(spec) not in (3, 4) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers)
                or spec[1] < spec[0] or int(spec[2]) != spec[2] or spec[2] < 1
                or spacing not in ("linear", "log") or (spacing == "log" and spec[0] <= 0)):
            raise ValueError(f"{owner}: parameter_grid[{name!r}] must be [low, high, count] or [low, high, count, "
                             f"'log'] with low <= high (low > 0 for 'log') and an integer count >= 1, got {spec!r}")
        low, high, count = float(spec[0]), float(spec[1]), int(spec[2])
        if spacing == "log":
            axis = torch.logspace(math.log10(low), math.log10(high), count, dtype=torch.float64)
            axis[0] = low  # the box's own ends (10 ** log10(x) can be off in the last digit)
            if count > 1:
                axis[-1] = high
        else:
            axis = torch.linspace(low, high, count, dtype=torch.float64)
        axes.append(axis)
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(names))
