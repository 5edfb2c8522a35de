"""GPT-PINN (Chen & Koohy, arXiv 2303.14878) and its sparse variant S2GPT-PINN (Ji, Chen & Koohy, arXiv 2506.15687).

A parametric PDE is solved for many parameters mu with u_n(x; mu) = sum_i c_i(mu) Psi_i(x), where each "neuron"
Psi_i is a full PINN trained (offline, greedily) at a selected parameter mu_i and then frozen. The neurons' values
and derivatives at all point sets are computed once and kept as buffers, so that the online solve for c touches
only small dense matrices (GPT-PINN Sec. 2.2), for all parameters at once.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_pde import CHECKPOINT_CLASS_KEY
from lightning_pde.callbacks.time_marching import continuity_residual, is_windowed, squeeze_time, window_edges
from lightning_pde.gptpinn import ReducedFields, batched_conditions, field_keys, solve_batched
from lightning_pde.gptpinn.solvers import SOLVERS
from lightning_pde.modules.pinn import PINN, checkpoint_hparams
from lightning_pde.nn import MLP
from lightning_pde.nn.embeddings import FourierFeatures
from lightning_pde.problems import Problem
from lightning_pde.spec import class_path, from_spec
from lightning_pde.validation import (boolean, integer_at_least, integer_list, name_list, positive_float,
                                     positive_int)

#: Jacobian entries per chunk when Gauss-Newton's J^T J is accumulated: 2^16 float64 = 512 KB, which stays in cache
NORMAL_CHUNK_ENTRIES = 2 ** 16


class _GivenFields(ReducedFields):
    """Fields with given values (M, N) per key instead of ``c @ columns`` (for the chain-rule Jacobian)."""

    def __init__(self, values: dict[str, Tensor], x: Tensor, input_names: tuple[str, ...],
                 shifted: "ReducedFields | None" = None) -> None:
        super().__init__({}, x, input_names, None, shifted)
        self.values = values

    def __getitem__(self, key: str) -> Tensor:
        if key in self.input_names:
            return self.x[:, self.input_names.index(key)]
        if key not in self.values:
            raise KeyError(f"GPTPINN: the neuron bank has no field {key!r} (it stores {sorted(self.values)})")
        return self.values[key]


class GPTPINN(pl.LightningModule):
    """The GPT-PINN meta-network: a neuron bank of frozen full PINNs and a batched online solver for c.

    Fitting (``trainer.fit(module)``, no data module) runs the greedy offline stage: each epoch trains one neuron's
    full PINN (the problem's own :class:`~lightning_pde.modules.PINN` with its conditions) at the next parameter and
    appends its fields to the bank; the :class:`~lightning_pde.callbacks.GreedyBasisSelection` callback then picks
    the next parameter (added automatically when the trainer has none).

    Args:
        problem: the parametric PDE, e.g. ``Burgers()``; its `parameter_names` are the parameters mu (their values in
            `problem` are ignored).
        parameter_grid: training set Xi_train, ``{name: [low, high, count]}`` per parameter (a tensor grid of
            linspaces), e.g. ``{"nu": [0.005, 1.0, 129]}``; ``[low, high, count, "log"]`` spaces that axis
            geometrically (low > 0), for a parameter such as a viscosity that spans decades.
        max_neurons: number of neurons the greedy stage adds (>= 1).
        neuron_max_steps: Adam steps of each neuron's full PINN (>= 1).
        neuron_lbfgs_steps: L-BFGS iterations after Adam for each neuron (>= 0).
        neuron_lr: Adam learning rate of the neurons (> 0).
        neuron_hidden: hidden widths of each neuron's MLP.
        neuron_activation: activation of the neurons' MLPs (e.g. ``tanh``, ``cos``... as `MLP` accepts).
        hard_constraints: train neurons with the problem's hard-constraint output transform (if it has one).
        pde_grid: points per input of the residual grid (training and bank), e.g. ``[60, 60]``.
        neuron_pde_grid: a finer residual grid for *training* the neurons only (default `pde_grid`); the bank and
            the online solve stay on `pde_grid`. For neurons with thin layers (Burgers at nu = 0.005: a shock of
            width ~0.01) that a grid fine enough for the online solve does not resolve.
        n_condition_points: points of each initial/boundary/periodic condition (>= 1).
        test_grid: points per input of the grid where the bank also stores values (for fast prediction).
        first_params: mu_1; default the centre of the grid's box.
        solver: online solver, one of ``gd``, ``adam``, ``gauss_newton`` (Levenberg-Marquardt), ``lstsq`` (linear PDEs).
        solver_steps: iterations of the online solver (>= 1; unused by ``lstsq``).
        solver_lr: learning rate of ``gd``/``adam`` (> 0).
        candidate_chunk: parameters per batched solve in the greedy stage (memory bound, >= 1).
        seed: seed of each neuron's initialisation (neuron i uses seed + i).
        neuron_fourier_features: random Fourier features (``FourierFeatures``) in front of each neuron's MLP, 0 for
            none. Against spectral bias: a plain tanh PINN stalls on high-frequency Helmholtz neurons (a2 = 4).
        neuron_fourier_scale: standard deviation of those frequencies (cycles per unit of normalised input, > 0).
        neuron_precision: dtype the neurons are *trained* in, ``float64`` or ``float32`` (about 2-4x faster on a
            CPU); the bank is always computed and stored in float64.
        neuron_net: each neuron's network, unbuilt (no sizes; every neuron builds its own copy), instead of the
            MLP that `neuron_hidden`, `neuron_activation` and `neuron_fourier_*` describe. A
            :class:`~lightning_pde.nn.time_windows.TimeWindows` network trains by time marching: window after
            window, each with `neuron_max_steps` Adam steps and `neuron_lbfgs_steps` L-BFGS iterations on its own
            copy of the `neuron_pde_grid` (default `pde_grid`) points squeezed into its time slab, the initial
            condition of each later window being continuity with the one before (for Allen-Cahn at eps = 5,
            where a single network fails).
        neuron_loss_weights: weight per condition in each neuron's training loss, as ``PINN(loss_weights=...)``
            (e.g. ``{"initial": 100.0}``: with time windows the initial condition carries the state from window to
            window, so its misfit accumulates).
        neuron_match: with a TimeWindows `neuron_net`, the fields that must agree across a window boundary
            (``["u"]``; ``["u", "u_t"]`` for an equation second order in time).

    API: ``solve(params)`` (M, p) -> c (M, n); ``predict(params, points)`` -> u (M, N);
    ``selected_params`` (n, p); ``max_losses`` (largest greedy loss after each neuron).
    """

    def __init__(
        self,
        problem: Problem,
        parameter_grid: dict[str, list[float | str]],
        max_neurons: int = 10,
        neuron_max_steps: int = 2000,
        neuron_lbfgs_steps: int = 0,
        neuron_lr: float = 5e-3,
        neuron_hidden: list[int] | None = None,
        neuron_activation: str = "tanh",
        hard_constraints: bool = True,
        pde_grid: list[int] | None = None,
        neuron_pde_grid: list[int] | None = None,
        n_condition_points: int = 200,
        test_grid: list[int] | None = None,
        first_params: list[float] | None = None,
        solver: str = "gauss_newton",
        solver_steps: int = 20,
        solver_lr: float = 0.02,
        candidate_chunk: int = 256,
        seed: int = 1234,
        neuron_fourier_features: int = 0,
        neuron_fourier_scale: float = 1.0,
        neuron_precision: str = "float64",
        neuron_net: nn.Module | None = None,
        neuron_loss_weights: dict[str, float] | None = None,
        neuron_match: list[str] | None = None,
    ) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # Lightning warns that `neuron_net` is an nn.Module; checkpoint_hparams stores its spec, not the object.
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        checkpoint_hparams(self.hparams)
        problem = from_spec(problem)
        owner = "GPTPINN"
        if not isinstance(problem, Problem):
            raise ValueError(f"{owner}: problem must be a lightning_pde Problem, got {type(problem).__name__}")
        if not problem.parameter_names:
            raise ValueError(f"{owner}: problem {problem.name} has no parameters (parameter_names is empty)")
        data = sorted(name for name, cond in problem.conditions().items() if cond.n_values)
        if problem.unknowns or data:
            # the reduced model is a parametric forward solver: observations and unknown constants belong to a PINN
            raise ValueError(f"{owner}: problem {problem.name} is an inverse problem (unknowns "
                             f"{sorted(problem.unknowns)}, observation conditions {data}); train it with PINN")
        self.problem = problem
        names = problem.parameter_names
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
                                 f"'log'] with low <= high (low > 0 for 'log') and an integer count >= 1, "
                                 f"got {spec!r}")
            low, high, count = float(spec[0]), float(spec[1]), int(spec[2])
            if spacing == "log":
                axis = torch.logspace(math.log10(low), math.log10(high), count, dtype=torch.float64)
                axis[0] = low  # the box's own ends (10 ** log10(x) can be off in the last digit)
                if count > 1:
                    axis[-1] = high
            else:
                axis = torch.linspace(low, high, count, dtype=torch.float64)
            axes.append(axis)
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(names))
        self.register_buffer("training_params", grid, persistent=False)
        self.register_buffer("param_low", grid.min(0).values, persistent=False)
        self.register_buffer("param_high", grid.max(0).values, persistent=False)
        self.max_neurons = positive_int(owner, "max_neurons", max_neurons)
        self.neuron_max_steps = positive_int(owner, "neuron_max_steps", neuron_max_steps)
        self.neuron_lbfgs_steps = integer_at_least(owner, "neuron_lbfgs_steps", neuron_lbfgs_steps, 0)
        self.neuron_lr = positive_float(owner, "neuron_lr", neuron_lr)
        self.neuron_hidden = integer_list(owner, "neuron_hidden", neuron_hidden if neuron_hidden is not None
                                          else [20, 20, 20])
        if not isinstance(neuron_activation, str):
            raise ValueError(f"{owner}: neuron_activation must be a string, got {neuron_activation!r}")
        MLP(self.neuron_hidden, neuron_activation)  # fails here on an unknown activation
        self.neuron_activation = neuron_activation
        self.hard_constraints = boolean(owner, "hard_constraints", hard_constraints) and bool(problem.hard_conditions)
        d = problem.n_inputs
        self.pde_grid = integer_list(owner, "pde_grid", pde_grid if pde_grid is not None else [50] * d, minimum=2)
        self.test_grid = integer_list(owner, "test_grid", test_grid if test_grid is not None else [50] * d, minimum=2)
        self.neuron_pde_grid = (None if neuron_pde_grid is None
                                else integer_list(owner, "neuron_pde_grid", neuron_pde_grid, minimum=2))
        for key, value in (("pde_grid", self.pde_grid), ("test_grid", self.test_grid),
                           ("neuron_pde_grid", self.neuron_pde_grid or self.pde_grid)):
            if len(value) != d:
                raise ValueError(f"{owner}: {key} must have one entry per input {problem.input_names}, got {value}")
        self.n_condition_points = positive_int(owner, "n_condition_points", n_condition_points)
        first = first_params if first_params is not None else ((grid.min(0).values + grid.max(0).values) / 2).tolist()
        self.first_params = self._check_params(torch.as_tensor(first, dtype=torch.float64).reshape(1, -1),
                                               "first_params", warn=True)[0]
        if solver not in SOLVERS:
            raise ValueError(f"{owner}: solver must be one of {SOLVERS}, got {solver!r}")
        self.solver = solver
        self.solver_steps = positive_int(owner, "solver_steps", solver_steps)
        self.solver_lr = positive_float(owner, "solver_lr", solver_lr)
        self.candidate_chunk = positive_int(owner, "candidate_chunk", candidate_chunk)
        self.seed = integer_at_least(owner, "seed", seed, 0)
        self.neuron_fourier_features = integer_at_least(owner, "neuron_fourier_features", neuron_fourier_features, 0)
        self.neuron_fourier_scale = positive_float(owner, "neuron_fourier_scale", neuron_fourier_scale)
        if neuron_precision not in ("float64", "float32"):
            raise ValueError(f"{owner}: neuron_precision must be 'float64' or 'float32', got {neuron_precision!r}")
        self.neuron_precision = neuron_precision
        neuron_net = from_spec(neuron_net)
        if neuron_net is not None:
            if not isinstance(neuron_net, nn.Module):
                raise ValueError(f"{owner}: neuron_net must be a network (an nn.Module such as MLP or TimeWindows), "
                                 f"got {neuron_net!r}")
            if any(True for _ in neuron_net.parameters()):
                raise ValueError(f"{owner}: neuron_net must be unbuilt (no in_features/out_features), so that each "
                                 f"neuron builds and initialises its own copy; got a {type(neuron_net).__name__} "
                                 "with parameters")
            given = [k for k, v in (("neuron_hidden", neuron_hidden), ("neuron_fourier_features",
                                                                         neuron_fourier_features or None)) if v]
            if given:
                raise ValueError(f"{owner}: give either neuron_net or {given}, not both (neuron_net replaces the "
                                 "MLP they describe)")
        if neuron_loss_weights is not None and not isinstance(neuron_loss_weights, dict):
            raise ValueError(f"{owner}: neuron_loss_weights must map condition names to weights, got "
                             f"{neuron_loss_weights!r}")
        self.neuron_loss_weights = dict(neuron_loss_weights or {})
        self.conditions = problem.conditions()
        unknown = sorted(set(self.neuron_loss_weights) - set(self.conditions))
        if unknown:
            raise ValueError(f"{owner}: neuron_loss_weights has unknown condition(s) {unknown}; {problem.name} has "
                             f"{sorted(self.conditions)}")
        #: a list, so that the unbuilt template is no submodule
        self._neuron_template = [neuron_net] if neuron_net is not None else []
        self.neuron_windowed = is_windowed(neuron_net)
        self.neuron_match = name_list(owner, "neuron_match", neuron_match if neuron_match is not None else ["u"])
        if self.neuron_windowed:
            if neuron_net.time_input not in problem.input_names:
                raise ValueError(f"{owner}: neuron_net marches in {neuron_net.time_input!r}, but {problem.name}'s "
                                 f"inputs are {problem.input_names}")
            if not any(c.kind == "initial" for c in self.conditions.values()):
                raise ValueError(f"{owner}: a TimeWindows neuron_net needs an initial condition to march from; "
                                 f"{problem.name} has none")
            if self.hard_constraints and any(self.conditions[name].kind == "initial"
                                             for name in problem.hard_conditions):
                raise ValueError(f"{owner}: a TimeWindows neuron_net needs the initial condition in the loss (later "
                                 "windows replace it by continuity); set hard_constraints: false")
        self.automatic_optimization = False
        self.keys = field_keys(problem)
        point_sets = self._point_sets()
        self._point_set_names = tuple(point_sets)
        n_keys = len(self.keys)
        for name, points in point_sets.items():
            self.register_buffer(f"points_{name}", points, persistent=False)
            self.register_buffer(f"bank_{name}", torch.zeros(n_keys, len(points), 0, dtype=torch.float64))
        self.register_buffer("selected", torch.zeros(0, len(names), dtype=torch.float64))
        self.register_buffer("max_losses", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("next_params", self.first_params.clone())
        # S2GPT state (CollocationDownsampling): magic points (indices into the pde grid) and their EIM bases.
        self.register_buffer("magic_u", torch.zeros(0, dtype=torch.long))
        self.register_buffer("magic_r", torch.zeros(0, dtype=torch.long))
        self.register_buffer("eim_u", torch.zeros(len(point_sets["pde"]), 0, dtype=torch.float64))
        self.register_buffer("eim_r", torch.zeros(len(point_sets["pde"]), 0, dtype=torch.float64))
        #: sparse online loss settings (set by CollocationDownsampling, saved in the checkpoint)
        self.sparse: dict[str, Any] | None = None
        self.neurons = nn.ModuleList()
        # DistributedDataParallel refuses a module without a trainable parameter; this one is never updated (the
        # greedy stage trains the neurons with their own optimizers, outside Lightning's loop).
        self.ddp_anchor = nn.Parameter(torch.zeros(1))
        self.neuron_seconds: list[float] = []
        #: each neuron's final training loss (its full PINN's, in its training precision)
        self.neuron_losses: list[float] = []

    # ------------------------------------------------------------------ set-up
    @property
    def point_sets(self) -> dict[str, Tensor]:
        """The bank's point sets by name (``pde``, each condition, ``test``), on the module's device."""
        return {name: getattr(self, f"points_{name}") for name in self._point_set_names}

    def _point_sets(self) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        sets = {"pde": self.problem.domain.grid(self.pde_grid).to(torch.float64)}
        for name, cond in self.conditions.items():
            if cond.kind == "pde":
                continue
            points = cond.sample(self.n_condition_points, generator, "uniform").to(torch.float64)
            sets[name] = points
            if cond.kind == "periodic":
                shifted = points.clone()
                for input_name, period in self.problem.periodic_inputs.items():
                    shifted[:, self.problem.input_names.index(input_name)] += period
                sets[f"{name}__shifted"] = shifted
        sets["test"] = self.problem.domain.grid(self.test_grid).to(torch.float64)
        return sets

    def _check_params(self, params: Tensor, what: str = "params", warn: bool = True) -> Tensor:
        p = len(self.problem.parameter_names)
        device = self.param_low.device if hasattr(self, "param_low") else None  # the module's, once it exists
        params = torch.as_tensor(params, dtype=torch.float64, device=device)
        if params.ndim == 1 and p > 1 and len(params) == p:
            params = params.reshape(1, p)
        if params.ndim == 1 and p == 1:
            params = params.reshape(-1, 1)
        if params.ndim != 2 or params.shape[1] != p:
            raise ValueError(f"GPTPINN: {what} must have shape (M, {p}) for parameters "
                             f"{list(self.problem.parameter_names)}, got {tuple(params.shape)}")
        if warn and hasattr(self, "param_low"):
            outside = ((params < self.param_low - 1e-12) | (params > self.param_high + 1e-12)).any(1)
            if outside.any():
                warnings.warn(f"GPTPINN: {int(outside.sum())} of {len(params)} {what} lie outside the training box "
                              f"[{self.param_low.tolist()}, {self.param_high.tolist()}]; solving anyway "
                              "(extrapolation may be inaccurate)", stacklevel=3)
        return params

    def problem_at(self, params: Tensor) -> Problem:
        """The problem with its parameters set to `params` (p,)."""
        args = dict(self.problem.init_args)
        args.update({name: float(v) for name, v in zip(self.problem.parameter_names, params.tolist())})
        return type(self.problem)(**args)

    def _new_pinn(self, params: Tensor, index: int) -> PINN:
        torch.manual_seed(self.seed + index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self._neuron_template:
                net = copy.deepcopy(self._neuron_template[0])
            else:
                embedding = (FourierFeatures(self.neuron_fourier_features, self.neuron_fourier_scale,
                                             seed=self.seed + index) if self.neuron_fourier_features else None)
                net = MLP(self.neuron_hidden, self.neuron_activation, embedding=embedding)
            pinn = PINN(self.problem_at(params), net=net, hard_constraints=self.hard_constraints,
                        loss_weights=self.neuron_loss_weights)
        return pinn.double()

    # ------------------------------------------------------------------ the bank
    @property
    def n_neurons(self) -> int:
        return int(self.selected.shape[0])

    @property
    def selected_params(self) -> Tensor:
        """The greedily selected parameters (n_neurons, p), in order."""
        return self.selected

    def neuron_fields(self, pinn: PINN, points: Tensor) -> Tensor:
        """(n_keys, N) fields of one neuron at `points`."""
        with torch.enable_grad():
            fields = pinn.fields(points.to(torch.float64))
            return torch.stack([fields[key].detach().reshape(-1) for key in self.keys])

    def train_neuron(self, params: Tensor) -> PINN:
        """Train a full PINN at `params` (p,) with the problem's conditions on the bank's points."""
        start = time.perf_counter()
        pinn = self._new_pinn(params, self.n_neurons)
        dtype = torch.float32 if self.neuron_precision == "float32" else torch.float64
        pinn = pinn.to(device=self.bank_pde.device, dtype=dtype)  # trained where the module lives (GPU or CPU)
        points = {name: self.point_sets[name].to(dtype) for name in pinn.conditions}
        if self.neuron_pde_grid is not None:
            points["pde"] = self.problem.domain.grid(self.neuron_pde_grid).to(device=self.bank_pde.device, dtype=dtype)
        weights = pinn.loss_weights

        def total(points: dict[str, Tensor]) -> Tensor:
            losses = pinn.condition_losses(points)
            return sum(weights[k] * v for k, v in losses.items())

        with torch.enable_grad():
            if self.neuron_windowed:
                loss = self._march(pinn, points, total)
            else:
                loss = self._optimize(list(pinn.parameters()), lambda: total(points))
            self.neuron_losses.append(loss)
        pinn = pinn.double()  # the bank is float64 whatever the training precision
        for p in pinn.parameters():
            p.requires_grad_(False)
        self.neuron_seconds.append(time.perf_counter() - start)
        return pinn

    def _optimize(self, parameters: list[nn.Parameter], total: Callable[[], Tensor]) -> float:
        """`neuron_max_steps` Adam steps (cosine decay to lr / 20), then up to `neuron_lbfgs_steps` L-BFGS
        iterations on the loss `total()`; returns the final loss."""
        optimizer = torch.optim.Adam(parameters, lr=self.neuron_lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.neuron_max_steps, self.neuron_lr / 20)
        for _ in range(self.neuron_max_steps):
            optimizer.zero_grad(set_to_none=True)
            total().backward()
            optimizer.step()
            schedule.step()
        if self.neuron_lbfgs_steps:
            lbfgs = torch.optim.LBFGS(parameters, lr=1.0, max_iter=self.neuron_lbfgs_steps, history_size=50,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

            def closure() -> Tensor:
                lbfgs.zero_grad(set_to_none=True)
                value = total()
                value.backward()
                return value

            lbfgs.step(closure)
        return float(total().detach())

    def _march(self, pinn: PINN, points: dict[str, Tensor], total: Callable[[dict[str, Tensor]], Tensor]) -> float:
        """Train a TimeWindows neuron window by window (see `neuron_net`); returns the mean of the windows' final
        losses. The same scheme as the TimeMarching callback, without a trainer."""
        net = pinn.net
        index = self.problem.input_names.index(net.time_input)
        edges = window_edges(pinn, net.n_windows, net.time_input)
        original = dict(pinn.conditions)
        initial = [name for name, cond in original.items() if cond.kind == "initial"]
        losses = []
        try:
            for k in range(net.n_windows):
                window = {name: squeeze_time(p.clone(), index, edges, edges[k], edges[k + 1])
                          for name, p in points.items()}
                if k > 0:
                    net.windows[k].load_state_dict(net.windows[k - 1].state_dict())
                    for name in initial:
                        pinn.conditions[name] = dataclasses.replace(
                            original[name], residual=continuity_residual(pinn, k - 1, self.neuron_match))
                net.active_window = k
                losses.append(self._optimize(list(net.windows[k].parameters()), lambda: total(window)))
        finally:
            net.active_window = None
            pinn.conditions.update(original)
        return sum(losses) / len(losses)

    def add_neuron(self, pinn: PINN, params: Tensor) -> None:
        """Append a trained neuron: its fields at every point set become a new bank column."""
        for name, points in self.point_sets.items():
            column = self.neuron_fields(pinn, points).unsqueeze(-1)
            setattr(self, f"bank_{name}", torch.cat([getattr(self, f"bank_{name}"), column], dim=-1))
        self.neurons.append(pinn)
        self.selected = torch.cat([self.selected, params.reshape(1, -1).to(torch.float64)])

    def columns(self, name: str, rows: Tensor | None = None) -> dict[str, Tensor]:
        bank = getattr(self, f"bank_{name}")
        if rows is not None:
            bank = bank[:, rows]
        return {key: bank[i] for i, key in enumerate(self.keys)}

    # ------------------------------------------------------------------ the online problem
    def _fields(self, name: str, c: Tensor, rows: Tensor | None = None) -> ReducedFields:
        points = self.point_sets[name] if rows is None else self.point_sets[name][rows]
        shifted = None
        if f"{name}__shifted" in self.point_sets:
            shifted = self._fields(f"{name}__shifted", c, rows)
        return ReducedFields(self.columns(name, rows), points, self.problem.input_names, c, shifted)

    def residual_fn(self, params: Tensor, sparse: bool | None = None):
        """r(c): (M, n) -> (M, R) with |r|^2 the reduced physics loss for each parameter.

        Full (GPT-PINN): sum over conditions of mean squared residual. Sparse (S2GPT-PINN, arXiv 2506.15687
        Sec. 3): the PDE residual at the magic points only, plus ``weight * (sum_i c_i - 1)^2`` in place of the
        parameter-independent initial/boundary terms (any affine combination of the neurons satisfies them).
        """
        conditions = batched_conditions(self.problem, params)
        use_sparse = self.sparse is not None and len(self.magic_u) > 0 if sparse is None else sparse
        if use_sparse and (self.sparse is None or not len(self.magic_u)):
            raise ValueError("GPTPINN: sparse=True needs magic points (run with CollocationDownsampling)")
        rows = torch.cat([self.magic_u, self.magic_r]) if use_sparse else None
        keep = set(self.sparse.get("keep_conditions", [])) if use_sparse else set(conditions)
        weight = float(self.sparse.get("sum_to_one_weight", 1.0)) if use_sparse else 0.0
        if weight > 0 and not self.replaced_conditions_inhomogeneous(keep):
            weight = 0.0  # e.g. Helmholtz's u = 0: every combination satisfies it, sum c is not constrained

        plan = [(cond, "pde", rows) if cond.kind == "pde" else (cond, name, None)
                for name, cond in conditions.items() if cond.kind == "pde" or name in keep]
        penalty = math.sqrt(weight) if use_sparse and weight > 0 else 0.0

        def assemble(fields_for, m: int, sizes: list | None = None) -> list[Tensor]:
            parts = []
            for j, (cond, set_name, set_rows) in enumerate(plan):
                r = cond.residual(fields_for(j, set_name, set_rows)).reshape(m, -1)
                parts.append(r / math.sqrt(r.shape[1]))
                if sizes is not None:
                    sizes.append(r.shape[1])
            return parts

        def residual(c: Tensor) -> Tensor:
            parts = assemble(lambda j, set_name, set_rows: self._fields(set_name, c, set_rows), len(c))
            if penalty:
                parts.append(penalty * (c.sum(-1, keepdim=True) - 1))
            return torch.cat(parts, dim=1)

        residual.jacobian = self._field_jacobian(plan, assemble, residual, penalty, ("sparse", use_sparse))
        residual.normal_equations = residual.jacobian.normal_equations
        return residual

    def _field_jacobian(self, plan: list, assemble, residual, penalty: float, cache_key: tuple):
        """(r, J) by the chain rule through the stored fields. Each residual is pointwise in the fields u, u_x, ...
        at its own point (and its periodic partner), so J[m, r, i] = sum_k dr/df_k[m, r] Psi_k[r, i], with the
        dr/df_k from one backward pass per residual component (instead of a forward-mode pass per neuron), and no
        (n x M x R) tangent fields. A residual that is not pointwise is detected on the first call (one random
        directional derivative) and falls back to the generic Jacobian. ``normal_equations(c)`` (Gauss-Newton) folds
        J into J^T J chunk by chunk instead of returning it."""
        from lightning_pde.gptpinn.solvers import jacobian as generic_jacobian
        from lightning_pde.gptpinn.solvers import normal_from_jacobian

        names = self.problem.input_names
        # the verdict depends on the problem and the loss variant only: checked once per module and variant
        verdicts = self.__dict__.setdefault("_pointwise_verdicts", {})
        state = {"checked": cache_key in verdicts, "pointwise": verdicts.get(cache_key, True)}

        def columns(set_name: str, set_rows: Tensor | None) -> dict[str, Tensor]:
            return self.columns(set_name, set_rows)

        def parts(c: Tensor) -> tuple[Tensor, list[tuple[int, int, list]]] | None:
            """(r without the penalty row, terms), or None where the residual turns out not to be pointwise. terms
            has per part of r (first row, rows, [(dr/df (M, rows), the field's bank columns (rows, n))] for the fields
            the part's residual depends on): J of the part is the sum of dr/df * columns over that list."""
            m = c.shape[0]
            cols = []  # per plan item: (main columns, shifted columns or None)
            for _, set_name, set_rows in plan:
                shifted = f"{set_name}__shifted"
                cols.append((columns(set_name, set_rows),
                             columns(shifted, set_rows) if shifted in self.point_sets else None))
            entries = [(j, key, False) for j in range(len(plan)) for key in self.keys]
            entries += [(j, key, True) for j in range(len(plan)) if cols[j][1] is not None for key in self.keys]
            primals = tuple(c @ cols[j][1 if sh else 0][key].T for j, key, sh in entries)
            index = {e: i for i, e in enumerate(entries)}

            def fields_from(values):
                def fields_for(j, set_name, set_rows):
                    points = self.point_sets[set_name] if set_rows is None else self.point_sets[set_name][set_rows]
                    shifted = None
                    if cols[j][1] is not None:
                        spoints = self.point_sets[f"{set_name}__shifted"]
                        spoints = spoints if set_rows is None else spoints[set_rows]
                        shifted = _GivenFields({k: values[index[(j, k, True)]] for k in self.keys}, spoints, names)
                    return _GivenFields({k: values[index[(j, k, False)]] for k in self.keys}, points, names, shifted)
                return fields_for

            sizes: list[int] = []

            def r_of(*values):
                sizes.clear()
                return torch.cat(assemble(fields_from(values), m, sizes), dim=1)

            # Each residual row belongs to one point of its part (component c of point p is row c N_j + p, the layout
            # of the pairs below; checked once against forward mode), so d r / d f_k at a point is the gradient of
            # the sum of one component's rows with respect to f_k: one backward pass per component (one for most
            # problems, two for a periodic pair u, u_x) gives every group's derivative, about 3x cheaper than a
            # forward-mode pass per group.
            leaves = tuple(p.detach().requires_grad_(True) for p in primals)
            points = [len(self.point_sets[set_name]) if set_rows is None else len(set_rows)
                      for _, set_name, set_rows in plan]
            with torch.enable_grad():
                r = r_of(*leaves)
                if any(size % count for size, count in zip(sizes, points)):
                    state["pointwise"] = verdicts[cache_key] = False
                    return None
                components = [size // count for size, count in zip(sizes, points)]
                offsets = [sum(sizes[:j]) for j in range(len(sizes))]
                passes = []
                for comp in range(max(components)):
                    select = torch.zeros_like(r)
                    for j, k in enumerate(components):
                        if comp < k:
                            select[:, offsets[j] + comp * points[j]: offsets[j] + (comp + 1) * points[j]] = 1
                    passes.append(torch.autograd.grad(r, leaves, select, allow_unused=True,
                                                      retain_graph=comp + 1 < max(components)))
            r = r.detach()
            terms = []
            for j in range(len(plan)):
                pairs = []  # only the fields this part uses (Allen-Cahn's PDE rows: 3 of 10 field groups)
                for entry, (part, g_key, g_shifted) in enumerate(entries):
                    grads = [passes[comp][entry] for comp in range(components[j])] if part == j else [None]
                    if all(grad is None for grad in grads):
                        continue
                    deriv = torch.cat([r.new_zeros(m, points[j]) if grad is None else grad for grad in grads], dim=1)
                    # several components per point (periodic: u and u_x) are stacked ahead of the points: row r
                    # belongs to point r mod N (a different layout fails the check in jacobian() and falls back)
                    pairs.append((deriv, cols[j][1 if g_shifted else 0][g_key].repeat(components[j], 1)))
                terms.append((offsets[j], sizes[j], pairs))
            return r, terms

        def rows_of_jacobian(pairs: list, start: int, stop: int, c: Tensor) -> Tensor:
            if not pairs:  # a residual that does not depend on the fields
                return c.new_zeros(c.shape[0], stop - start, c.shape[1])
            jac = pairs[0][0][:, start:stop, None] * pairs[0][1][start:stop]
            for deriv, block in pairs[1:]:  # a few fused multiply-adds (a batched matmul over rows is slower)
                jac.addcmul_(deriv[:, start:stop, None], block[start:stop])
            return jac

        def penalty_row(c: Tensor) -> Tensor:
            return penalty * (c.sum(-1, keepdim=True) - 1)

        def jacobian(c: Tensor) -> tuple[Tensor, Tensor]:
            got = parts(c) if state["pointwise"] else None
            if got is None:
                return generic_jacobian(residual, c, generic=True)
            r, terms = got
            m, n = c.shape
            jac = torch.cat([rows_of_jacobian(pairs, 0, rows, c) for _, rows, pairs in terms], dim=1)
            if penalty:
                r = torch.cat([r, penalty_row(c)], dim=1)
                jac = torch.cat([jac, penalty * c.new_ones(m, 1, n)], dim=1)
            if not state["checked"]:
                state["checked"] = True
                v = torch.randn(c.shape, dtype=c.dtype, generator=torch.Generator().manual_seed(0)).to(c.device)
                directional = torch.func.jvp(residual, (c,), (v,))[1]
                via = (jac @ v.unsqueeze(-1)).squeeze(-1)
                scale = directional.abs().max().clamp_min(1e-300)
                state["pointwise"] = verdicts[cache_key] = bool((directional - via).abs().max() <= 1e-8 * scale)
                if not state["pointwise"]:
                    return generic_jacobian(residual, c, generic=True)
            return r, jac

        def normal_equations(c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            """(r, J^T J, J^T r) for Gauss-Newton. J is assembled NORMAL_CHUNK_ENTRIES entries at a time and folded into
            J^T J at once, so the (M, R, n) Jacobian never exists in full: each chunk stays in cache through its
            multiply-adds (100 Burgers parameters on a 64 x 64 grid: 0.57 s instead of 1.0 s with the full J)."""
            got = parts(c) if state["pointwise"] and state["checked"] else None
            if got is None:
                return normal_from_jacobian(*jacobian(c))
            r, terms = got
            m, n = c.shape
            jtj, jtr = c.new_zeros(m, n, n), c.new_zeros(m, n)
            chunk = max(16, NORMAL_CHUNK_ENTRIES // (m * n))
            for first, rows, pairs in terms:
                part_r = r[:, first:first + rows]
                for deriv, block in pairs:  # J^T r = sum_k (dr/df_k * r) @ Psi_k: one matrix product per field
                    jtr.addmm_(deriv * part_r, block)
                for start in range(0, rows, chunk):
                    jac = rows_of_jacobian(pairs, start, min(start + chunk, rows), c).transpose(1, 2)
                    jtj.baddbmm_(jac, jac.transpose(1, 2))
            if penalty:  # the sum-to-one row penalty * (1, ..., 1)
                row = penalty_row(c)
                r = torch.cat([r, row], dim=1)
                jtj += penalty ** 2
                jtr += penalty * row
            return r, jtj, jtr

        jacobian.normal_equations = normal_equations
        return jacobian

    def replaced_conditions_inhomogeneous(self, keep: set[str]) -> bool:
        """Whether a non-PDE condition that the sparse loss drops (not in `keep`) is inhomogeneous, i.e. its residual
        at u = 0 is nonzero on the bank's points. Only then does sum_i c_i = 1 follow from it (S2GPT's affine
        constraint, for parameter-independent data such as Burgers' u(x, 0) = -sin(pi x)). For homogeneous data
        (Helmholtz's u = 0 on the boundary) any linear combination of neurons satisfies the condition, the solution's
        sum of coefficients is not 1, and the penalty would bias the fit (the S2GPT Helmholtz code uses the
        residual alone)."""
        zero = self.selected.new_zeros(1, max(self.n_neurons, 1))
        for name, cond in self.conditions.items():
            if cond.kind == "pde" or name in keep or name not in self.point_sets:
                continue
            columns = {key: zero.new_zeros(len(self.point_sets[name]), zero.shape[1])
                       for key in self.keys}
            shifted = None
            if f"{name}__shifted" in self.point_sets:
                shifted = ReducedFields(columns, self.point_sets[f"{name}__shifted"], self.problem.input_names, zero)
            fields = ReducedFields(columns, self.point_sets[name], self.problem.input_names, zero, shifted)
            if torch.as_tensor(cond.residual(fields)).abs().max() > 1e-12:
                return True
        return False

    def initial_coefficients(self, params: Tensor) -> Tensor:
        """Warm start: the coefficients that interpolate the nearest selected neuron (e_k; with an EIM basis this is
        S2GPT's interpolation start c = [alpha; 0] of the nearest snapshot)."""
        if self.n_neurons == 0:
            raise ValueError("GPTPINN: the neuron bank is empty (train it first, or load a checkpoint with neurons)")
        width = (self.param_high - self.param_low).clamp_min(1e-300)
        distance = (((params[:, None, :] - self.selected[None]) / width) ** 2).sum(-1)
        return torch.nn.functional.one_hot(distance.argmin(1), self.n_neurons).to(torch.float64)

    def solve(self, params: Tensor, solver: str | None = None, steps: int | None = None, lr: float | None = None,
              sparse: bool | None = None, warn: bool = True) -> Tensor:
        """Coefficients c (M, n_neurons) for parameters (M, p), all at once."""
        return self.solve_with_loss(params, solver, steps, lr, sparse, warn)[0]

    def solve_with_loss(self, params: Tensor, solver: str | None = None, steps: int | None = None,
                        lr: float | None = None, sparse: bool | None = None, warn: bool = True) -> tuple[Tensor, Tensor]:
        params = self._check_params(params, warn=warn)
        c0 = self.initial_coefficients(params)
        solver = solver or self.solver
        if solver not in SOLVERS:
            raise ValueError(f"GPTPINN: solver must be one of {SOLVERS}, got {solver!r}")
        with torch.no_grad():
            return solve_batched(self.residual_fn(params, sparse), c0, solver, steps or self.solver_steps,
                                 lr or self.solver_lr)

    def neuron_values(self, points: Tensor) -> Tensor:
        """Psi (N, n_neurons) at arbitrary points (one forward pass per neuron)."""
        with torch.no_grad():
            points = points.to(device=self.bank_pde.device, dtype=torch.float64)
            return torch.cat([pinn(points) for pinn in self.neurons], dim=1)

    def predict(self, params: Tensor, points: Tensor | None = None, **solve_kwargs: Any) -> Tensor:
        """u (M, N) at `points` (N, d) (default: the bank's test grid) for parameters (M, p)."""
        c = self.solve(params, **solve_kwargs)
        psi = self.columns("test")["u"] if points is None else self.neuron_values(points)
        return c @ psi.T

    def forward(self, params: Tensor, points: Tensor | None = None) -> Tensor:
        return self.predict(params, points)

    # ------------------------------------------------------------------ Lightning
    def configure_callbacks(self) -> list[pl.Callback]:
        from lightning_pde.callbacks.greedy_basis_selection import GreedyBasisSelection

        if self._trainer is not None and any(isinstance(cb, GreedyBasisSelection) for cb in self.trainer.callbacks):
            return []
        return [GreedyBasisSelection()]

    def train_dataloader(self) -> Any:
        # One dummy batch per epoch: an epoch is one greedy step (train a neuron, then select the next parameter).
        return torch.utils.data.DataLoader([torch.zeros(1)], batch_size=1)

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        if self.n_neurons >= self.max_neurons:
            return None
        params = self.next_params.clone()
        pinn = self.train_neuron(params)
        self._share_neuron(pinn)
        self.add_neuron(pinn, params)
        self.log("greedy/neuron_seconds", self.neuron_seconds[-1])
        if self.neuron_losses:
            self.log("greedy/neuron_loss", self.neuron_losses[-1])
        self.log("greedy/n_neurons", float(self.n_neurons))
        self.optimizers().step()  # no gradient, nothing changes: counts the greedy step (see configure_optimizers)
        return None

    def _share_neuron(self, pinn: PINN) -> None:
        """Under DDP give every rank rank 0's trained neuron. Each rank trains the same neuron from the same seed on
        the same points, which gives the same weights only where every kernel is deterministic (not all are on a
        GPU); with rank 0's weights everywhere the banks agree exactly, and so do the candidate losses that the
        ranks compute on their shares and the greedy choices made from them."""
        if self._trainer is None or self.trainer.world_size <= 1:
            return
        for tensor in [*pinn.parameters(), *pinn.buffers()]:
            torch.distributed.broadcast(tensor.data, src=0)

    def configure_optimizers(self) -> Any:
        # A no-op optimizer on the anchor: one (empty) step per greedy step advances trainer.global_step, which
        # ModelCheckpoint needs (it skips saving while global_step is unchanged, so with no optimizer the shipped
        # configs' checkpoints were never written mid-run and a long greedy stage could not be resumed).
        return torch.optim.SGD([self.ddp_anchor], lr=0.0)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_CLASS_KEY] = class_path(self)
        checkpoint["gptpinn_sparse"] = copy.deepcopy(self.sparse)
        checkpoint["gptpinn_neuron_seconds"] = list(self.neuron_seconds)
        checkpoint["gptpinn_neuron_losses"] = list(self.neuron_losses)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("state_dict", {})
        if "selected" not in state:
            raise ValueError("GPTPINN: the checkpoint has no neuron bank ('selected' is missing)")
        for key, value in state.items():
            if key.startswith(("bank_", "eim_", "magic_")) or key in ("selected", "max_losses"):
                setattr(self, key, torch.empty_like(value))
        self.neurons = nn.ModuleList(self._new_pinn(p, i) for i, p in enumerate(state["selected"]))
        for pinn in self.neurons:
            for p in pinn.parameters():
                p.requires_grad_(False)
        self.sparse = checkpoint.get("gptpinn_sparse")
        self.neuron_seconds = list(checkpoint.get("gptpinn_neuron_seconds", []))
        self.neuron_losses = list(checkpoint.get("gptpinn_neuron_losses", []))

    def require_bank(self) -> None:
        if self.n_neurons == 0:
            raise ValueError("GPTPINN: the neuron bank is empty (train it first, or load a checkpoint with neurons)")
