"""Training one GPT-PINN neuron: a full PINN at one parameter, along the optimization path that PINN training runs
(:class:`~lightning_pde.callbacks.lbfgs.OptimizationPath`), window by window for a time-windowed network."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lightning_pde.callbacks.lbfgs import OptimizationPath
from lightning_pde.callbacks.time_marching import (
    continuity_residual,
    is_windowed,
    squeeze_time,
    window_edges,
)
from lightning_pde.gptpinn.recipe import NeuronRecipe
from lightning_pde.modules.pinn import PINN


def train_neuron(pinn: PINN, points: dict[str, Tensor], recipe: NeuronRecipe) -> tuple[float, dict[str, float]]:
    """Train `pinn` on its conditions at `points` (``{condition: (N, n_inputs)}``, in the training dtype) along the
    recipe's path: `max_steps` Adam steps at `lr` (cosine decay to lr / 20), then the `second_order` phase. A
    TimeWindows network trains window by window (:func:`march`). Returns (final weighted loss, the second-order
    phase's metrics: iterations, evaluations, seconds; summed over the windows)."""
    weights = pinn.loss_weights

    def total(at: dict[str, Tensor]) -> Tensor:
        return sum(weights[k] * v for k, v in pinn.condition_losses(at).items())

    path = OptimizationPath(recipe.max_steps, recipe.second_order)
    with torch.enable_grad():
        if is_windowed(pinn.net):
            return march(pinn, points, total, path, recipe.lr, recipe.match)
        loss = run_path(path, recipe.lr, pinn, list(pinn.parameters()), points, lambda: total(points))
        return loss, path.metrics()


def run_path(path: OptimizationPath, lr: float, pinn: PINN, parameters: list[nn.Parameter],
             points: dict[str, Tensor], loss: Callable[[], Tensor]) -> float:
    """`path.run` with Adam at `lr` (cosine decay to lr / 20) as its first phase; the float64 switch converts `pinn`
    and `points` (in place, so that `loss` reads the converted ones)."""

    def to_float64() -> None:
        pinn.double()
        points.update({name: p.double() for name, p in points.items()})

    return path.run(parameters, loss, lambda p: torch.optim.Adam(p, lr=lr),
                    lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, path.first_steps, lr / 20), to_float64)


def march(pinn: PINN, points: dict[str, Tensor], total: Callable[[dict[str, Tensor]], Tensor],
          path: OptimizationPath, lr: float, match: list[str]) -> tuple[float, dict[str, float]]:
    """Train a TimeWindows neuron window by window, each along the whole `path` on its own copy of `points`
    squeezed into its time slab, later windows starting from the previous one's weights with continuity (of the
    fields in `match`) as their initial condition: the scheme of the TimeMarching callback, without a Trainer.
    Returns (the mean of the windows' final losses, the second-order metrics summed over the windows)."""
    net = pinn.net
    index = pinn.problem.input_names.index(net.time_input)
    edges = window_edges(pinn, net.n_windows, net.time_input)
    original = dict(pinn.conditions)
    initial = [name for name, cond in original.items() if cond.kind == "initial"]
    losses, metrics = [], {"iterations": 0.0, "evaluations": 0.0, "seconds": 0.0}
    try:
        for k in range(net.n_windows):
            window = {name: squeeze_time(p.clone(), index, edges, edges[k], edges[k + 1])
                      for name, p in points.items()}
            if k > 0:
                net.windows[k].load_state_dict(net.windows[k - 1].state_dict())
                for name in initial:
                    pinn.conditions[name] = dataclasses.replace(
                        original[name], residual=continuity_residual(pinn, k - 1, match))
            net.active_window = k
            losses.append(run_path(path, lr, pinn, list(net.windows[k].parameters()), window,
                                   lambda window=window: total(window)))
            for key, value in path.metrics().items():
                metrics[key] += value
    finally:
        net.active_window = None
        pinn.conditions.update(original)
    return sum(losses) / len(losses), metrics
