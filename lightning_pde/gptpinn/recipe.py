"""The neuron recipe of GPT-PINN: how each neuron's full PINN is built and trained, written like a PINN config."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch
from torch import nn

from lightning_pde.callbacks.lbfgs import SecondOrder
from lightning_pde.derivatives.base import DerivativeEngine
from lightning_pde.spec import class_path, from_spec, import_class, is_spec, to_spec
from lightning_pde.validation import (
    boolean,
    integer_at_least,
    integer_list,
    name_list,
    positive_float,
)

#: the GPTPINN arguments the recipe replaced, and where each went
REPLACED = {
    "neuron_max_steps": "neuron.max_steps", "neuron_lbfgs_steps": "neuron.second_order.iterations",
    "neuron_lr": "neuron.lr", "neuron_hidden": "neuron.net (MLP init_args.hidden)",
    "neuron_activation": "neuron.net (MLP init_args.activation)",
    "neuron_fourier_features": "neuron.net (MLP init_args.embedding: FourierFeatures n_features)",
    "neuron_fourier_scale": "neuron.net (MLP init_args.embedding: FourierFeatures scale)",
    "neuron_precision": "neuron.precision", "neuron_net": "neuron.net", "neuron_pde_grid": "neuron.pde_grid",
    "neuron_loss_weights": "neuron.loss_weights", "neuron_match": "neuron.match",
    "hard_constraints": "neuron.hard_constraints",
}


@dataclasses.dataclass
class NeuronRecipe:
    """How each GPT-PINN neuron, a full PINN at one parameter, is built and trained: the network, the derivative
    engine and the loss as for a :class:`~lightning_pde.modules.PINN`, then the optimization path that PINN training
    runs (:class:`~lightning_pde.callbacks.lbfgs.OptimizationPath`): `max_steps` Adam steps at `lr` (cosine decay to
    lr / 20), then the `second_order` phase with its stopping rule. A better PINN recipe is a better neuron by
    config alone. In a config::

        neuron:
          net: {class_path: MLP, init_args: {hidden: [20, 20, 20, 20], activation: tanh}}
          max_steps: 1000
          lr: 0.005
          second_order: {iterations: 500, iterations_per_step: 500}

    Args:
        net: the network, unbuilt (no sizes: every neuron builds and initialises its own copy, from seed
            ``GPTPINN.seed + index``; a ``FourierFeatures`` embedding's seed is offset the same way, so each neuron
            draws its own frequencies); default ``MLP([20, 20, 20], "tanh")``. A
            :class:`~lightning_pde.nn.time_windows.TimeWindows` network trains by time marching: window after
            window, each along the whole optimization path on its own copy of the `pde_grid` points squeezed into
            its time slab, the initial condition of each later window being continuity with the one before (for
            Allen-Cahn at eps = 5, where a single network fails).
        derivatives: derivative engine of the neurons' PINNs; default reverse-mode ``Autograd``.
        hard_constraints: train with the problem's hard-constraint output transform (if it has one).
        loss_weights: weight per condition in the training loss, as ``PINN(loss_weights=...)`` (e.g.
            ``{"initial": 100.0}``: with time windows the initial condition carries the state from window to window,
            so its misfit accumulates).
        pde_grid: points per input of a finer residual grid for *training* the neurons (default the module's
            `pde_grid`); the bank and the online solve stay on the module's grid. For neurons with thin layers
            (Burgers at nu = 0.005: a shock of width ~0.01).
        precision: dtype the neurons are trained in, ``float64`` or ``float32`` (about 2-4x faster on a CPU); the
            bank is always computed and stored in float64. ``second_order.float64`` switches a float32 neuron to
            float64 for the second-order phase.
        max_steps: Adam steps (>= 0; 0 with a second-order phase: that phase only).
        lr: Adam learning rate (> 0).
        second_order: the second-order phase (:class:`~lightning_pde.callbacks.lbfgs.SecondOrder`: `iterations`,
            `iterations_per_step`, `float64`, `optimizer` and the default L-BFGS's settings); ``iterations: 0``
            (the default) trains with Adam alone.
        match: with a TimeWindows `net`, the fields that must agree across a window boundary (``["u"]``;
            ``["u", "u_t"]`` for an equation second order in time).
    """

    net: nn.Module | None = None
    derivatives: DerivativeEngine | None = None
    hard_constraints: bool = True
    loss_weights: dict[str, float] | None = None
    pde_grid: list[int] | None = None
    precision: str = "float64"
    max_steps: int = 2000
    lr: float = 5e-3
    second_order: SecondOrder = dataclasses.field(default_factory=SecondOrder)
    match: list[str] | None = None

    @classmethod
    def from_value(cls, value: Any, owner: str = "GPTPINN") -> NeuronRecipe:
        """A recipe from what a user, a config or a checkpoint gives: a NeuronRecipe, a dict of its fields (nested
        ``second_order`` dict, specs for `net`, `derivatives` and the optimizer) or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"{owner}: neuron must be a neuron recipe, a mapping of {field_names(cls)}, got "
                             f"{value!r}")
        unknown = sorted(set(value) - set(field_names(cls)))
        if unknown:
            raise ValueError(f"{owner}: neuron has unknown key(s) {unknown}; a neuron recipe has "
                             f"{field_names(cls)}")
        args = dict(value)
        second = args.get("second_order")
        if second is None:
            args.pop("second_order", None)
        elif isinstance(second, dict):
            unknown = sorted(set(second) - set(field_names(SecondOrder)))
            if unknown:
                raise ValueError(f"{owner}: neuron.second_order has unknown key(s) {unknown}; it has "
                                 f"{field_names(SecondOrder)}")
            second = dict(second)
            if is_spec(second.get("optimizer")):
                second["optimizer"] = optimizer_from_spec(second["optimizer"])
            args["second_order"] = SecondOrder(**second)
        elif not isinstance(second, SecondOrder):
            raise ValueError(f"{owner}: neuron.second_order must be a mapping of {field_names(SecondOrder)}, got "
                             f"{second!r}")
        return cls(**args)

    def checked(self, owner: str = "GPTPINN") -> NeuronRecipe:
        """This recipe with every setting validated (the problem-dependent checks are the module's)."""
        net, derivatives = from_spec(self.net), from_spec(self.derivatives)
        if net is not None:
            if not isinstance(net, nn.Module):
                raise ValueError(f"{owner}: neuron.net must be a network (an nn.Module such as MLP or TimeWindows), "
                                 f"got {net!r}")
            if any(True for _ in net.parameters()):
                raise ValueError(f"{owner}: neuron.net must be unbuilt (no in_features/out_features), so that each "
                                 f"neuron builds and initialises its own copy; got a {type(net).__name__} with "
                                 "parameters")
        if derivatives is not None and not isinstance(derivatives, DerivativeEngine):
            raise ValueError(f"{owner}: neuron.derivatives must be a derivative engine (Autograd, SinglePass, ...), "
                             f"got {derivatives!r}")
        if self.loss_weights is not None and not isinstance(self.loss_weights, dict):
            raise ValueError(f"{owner}: neuron.loss_weights must map condition names to weights, got "
                             f"{self.loss_weights!r}")
        if self.precision not in ("float64", "float32"):
            raise ValueError(f"{owner}: neuron.precision must be 'float64' or 'float32', got {self.precision!r}")
        second_order = self.second_order.checked(owner, "neuron.second_order.")
        max_steps = integer_at_least(owner, "neuron.max_steps", self.max_steps, 0)
        if max_steps == 0 and second_order.iterations == 0:
            raise ValueError(f"{owner}: neuron.max_steps and neuron.second_order.iterations are both 0, so no neuron "
                             "would train")
        return dataclasses.replace(
            self, net=net, derivatives=derivatives,
            hard_constraints=boolean(owner, "neuron.hard_constraints", self.hard_constraints),
            loss_weights=dict(self.loss_weights or {}),
            pde_grid=None if self.pde_grid is None else integer_list(owner, "neuron.pde_grid", self.pde_grid,
                                                                     minimum=2),
            max_steps=max_steps, lr=positive_float(owner, "neuron.lr", self.lr), second_order=second_order,
            match=name_list(owner, "neuron.match", self.match if self.match is not None else ["u"]))

    def to_plain(self) -> dict[str, Any]:
        """Plain data for a checkpoint's hyperparameters (objects as specs); an optimizer factory that is not a
        class with arguments (a lambda) is left out: the bank is rebuilt without it."""
        plain = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        second = {field.name: getattr(self.second_order, field.name) for field in dataclasses.fields(SecondOrder)}
        second["optimizer"] = optimizer_spec(second["optimizer"])
        plain["second_order"] = second
        return {key: value if key == "second_order" else to_spec(value) for key, value in plain.items()}


def field_names(cls: type) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


def optimizer_spec(factory: Any) -> dict[str, Any] | None:
    """``{class_path, init_args}`` of an optimizer factory that is a class with keyword arguments
    (``functools.partial(torch.optim.LBFGS, ...)``, or what the Lightning CLI builds from such a spec); None for
    anything else."""
    if isinstance(factory, functools.partial):
        cls = next((a for a in (factory.func, *factory.args) if isinstance(a, type)), None)
        if cls is not None and issubclass(cls, torch.optim.Optimizer):
            try:
                return {"class_path": class_path(cls), "init_args": to_spec(dict(factory.keywords))}
            except TypeError:
                return None
    if isinstance(factory, type) and issubclass(factory, torch.optim.Optimizer):
        return {"class_path": class_path(factory), "init_args": {}}
    return None


def optimizer_from_spec(spec: dict[str, Any]) -> functools.partial:
    """The optimizer factory of a spec written by :func:`optimizer_spec`."""
    cls = import_class(spec["class_path"], torch.optim.Optimizer, admit=(torch.optim.Optimizer,))
    return functools.partial(cls, **spec.get("init_args", {}))


def refuse_replaced_arguments(owner: str, given: dict[str, Any]) -> None:
    """A clear error for arguments of the old flat form (``neuron_max_steps=...``), naming the key of the recipe that
    replaced each; any other unexpected argument is named too."""
    if not given:
        return
    old = {k: v for k, v in given.items() if k in REPLACED}
    if old:
        moved = "; ".join(f"{key}={value!r} -> {REPLACED[key]}" for key, value in old.items())
        raise ValueError(f"{owner}: the neuron_* arguments became one nested neuron recipe (see docs/gptpinn.md): "
                         f"{moved}. E.g. neuron: {{net: {{class_path: MLP, init_args: {{hidden: [20, 20]}}}}, "
                         "max_steps: 1000, lr: 0.005, second_order: {iterations: 500}}")
    raise ValueError(f"{owner}: unexpected argument(s) {sorted(given)}")
