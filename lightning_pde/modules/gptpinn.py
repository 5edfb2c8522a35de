"""GPT-PINN (Chen & Koohy, arXiv 2303.14878) and its sparse variant S2GPT-PINN (Ji, Chen & Koohy, arXiv 2506.15687).

A parametric PDE is solved for many parameters mu with u_n(x; mu) = sum_i c_i(mu) Psi_i(x), where each "neuron"
Psi_i is a full PINN trained (offline, greedily) at a selected parameter mu_i and then frozen. The neurons' values
and derivatives at all point sets are computed once and kept as buffers, so that the online solve for c touches
only small dense matrices (GPT-PINN Sec. 2.2), for all parameters at once.

This module is the Lightning glue; the building blocks are in :mod:`lightning_pde.gptpinn`: the neuron recipe and its
training (``recipe``, ``neuron``), the reduced fields and residual with its chain-rule Jacobian (``bank``,
``reduced``), the online solvers (``solvers``) and the EIM steps (``eim``).
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_pde import CHECKPOINT_CLASS_KEY
from lightning_pde.callbacks.time_marching import is_windowed
from lightning_pde.gptpinn import ReducedFields, field_keys, solve_batched
from lightning_pde.gptpinn.bank import training_grid
from lightning_pde.gptpinn.neuron import train_neuron
from lightning_pde.gptpinn.recipe import NeuronRecipe, refuse_replaced_arguments
from lightning_pde.gptpinn.reduced import reduced_fields, reduced_residual
from lightning_pde.gptpinn.reduced import (
    replaced_conditions_inhomogeneous as inhomogeneous,
)
from lightning_pde.gptpinn.solvers import SOLVERS
from lightning_pde.modules.pinn import PINN, checkpoint_hparams
from lightning_pde.nn import MLP
from lightning_pde.nn.embeddings import FourierFeatures
from lightning_pde.problems import Problem
from lightning_pde.spec import class_path, from_spec
from lightning_pde.validation import (
    integer_at_least,
    integer_list,
    positive_float,
    positive_int,
)


class GPTPINN(pl.LightningModule):
    """The GPT-PINN meta-network: a neuron bank of frozen full PINNs and a batched online solver for c.

    Fitting (``trainer.fit(module)``, no data module) runs the greedy offline stage: each epoch trains one neuron's
    full PINN (the problem's own :class:`~lightning_pde.modules.PINN` with its conditions) at the next parameter and
    appends its fields to the bank; the :class:`~lightning_pde.callbacks.GreedyBasisSelection` callback then picks
    the next parameter (added automatically when the trainer has none). Each neuron is built and trained by the
    `neuron` recipe, along the optimization path PINN training runs (Adam, then a second-order phase).

    Args:
        problem: the parametric PDE, e.g. ``Burgers()``; its `parameter_names` are the parameters mu (their values in
            `problem` are ignored).
        parameter_grid: training set Xi_train, ``{name: [low, high, count]}`` per parameter (a tensor grid of
            linspaces), e.g. ``{"nu": [0.005, 1.0, 129]}``; ``[low, high, count, "log"]`` spaces that axis
            geometrically (low > 0), for a parameter such as a viscosity that spans decades.
        max_neurons: number of neurons the greedy stage adds (>= 1).
        neuron: the neuron recipe (:class:`~lightning_pde.gptpinn.recipe.NeuronRecipe`, or a mapping of its keys):
            network, derivative engine, loss weights, training grid and precision, then Adam (`max_steps`, `lr`) and
            the `second_order` phase. In a config ``neuron: {net: {class_path: MLP, init_args: {hidden: [20, 20]}},
            max_steps: 1000, lr: 0.005, second_order: {iterations: 500}}``; on the command line
            ``--model.neuron.max_steps=200``. (It replaced the flat ``neuron_*`` arguments, which are refused with the
            key that replaced each.)
        pde_grid: points per input of the residual grid (training and bank), e.g. ``[60, 60]``.
        n_condition_points: points of each initial/boundary/periodic condition (>= 1).
        test_grid: points per input of the grid where the bank also stores values (for fast prediction).
        first_params: mu_1; default the centre of the grid's box.
        solver: online solver, one of ``gd``, ``adam``, ``gauss_newton`` (Levenberg-Marquardt), ``lstsq`` (linear PDEs).
        solver_steps: iterations of the online solver (>= 1; unused by ``lstsq``).
        solver_lr: learning rate of ``gd``/``adam`` (> 0).
        candidate_chunk: parameters per batched solve in the greedy stage (memory bound, >= 1).
        seed: seed of each neuron's initialisation (neuron i uses seed + i).

    API: ``solve(params)`` (M, p) -> c (M, n); ``predict(params, points)`` -> u (M, N);
    ``selected_params`` (n, p); ``max_losses`` (largest greedy loss after each neuron).
    Logged per neuron: ``greedy/neuron_seconds``, ``greedy/neuron_loss``, and its second-order phase's
    ``greedy/neuron_iterations``, ``greedy/neuron_evaluations``, ``greedy/neuron_second_order_seconds``.
    """

    def __init__(
        self,
        problem: Problem,
        parameter_grid: dict[str, list[float | str]],
        max_neurons: int = 10,
        neuron: NeuronRecipe = NeuronRecipe(),  # noqa: B008 (never mutated: checked() returns a new recipe)
        pde_grid: list[int] | None = None,
        n_condition_points: int = 200,
        test_grid: list[int] | None = None,
        first_params: list[float] | None = None,
        solver: str = "gauss_newton",
        solver_steps: int = 20,
        solver_lr: float = 0.02,
        candidate_chunk: int = 256,
        seed: int = 1234,
        **replaced: Any,
    ) -> None:
        owner = "GPTPINN"
        refuse_replaced_arguments(owner, replaced)
        super().__init__()
        self.save_hyperparameters()
        recipe = NeuronRecipe.from_value(neuron, owner).checked(owner)
        try:
            self.hparams["neuron"] = recipe.to_plain()  # plain data, so the checkpoint reloads with no arguments
        except TypeError as error:
            raise ValueError(f"{owner}: neuron cannot be stored in a checkpoint: {error}") from error
        checkpoint_hparams(self.hparams)
        problem = from_spec(problem)
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
        grid = training_grid(owner, names, parameter_grid)
        self.register_buffer("training_params", grid, persistent=False)
        self.register_buffer("param_low", grid.min(0).values, persistent=False)
        self.register_buffer("param_high", grid.max(0).values, persistent=False)
        self.max_neurons = positive_int(owner, "max_neurons", max_neurons)
        d = problem.n_inputs
        self.pde_grid = integer_list(owner, "pde_grid", pde_grid if pde_grid is not None else [50] * d, minimum=2)
        self.test_grid = integer_list(owner, "test_grid", test_grid if test_grid is not None else [50] * d, minimum=2)
        for key, value in (("pde_grid", self.pde_grid), ("test_grid", self.test_grid),
                           ("neuron.pde_grid", recipe.pde_grid or self.pde_grid)):
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
        self.conditions = problem.conditions()
        self.neuron = self._checked_for_problem(recipe)
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
        #: each neuron's second-order phase: iterations, evaluations, seconds
        self.neuron_metrics: list[dict[str, float]] = []

    def _checked_for_problem(self, recipe: NeuronRecipe) -> NeuronRecipe:
        """The recipe's checks that need the problem: loss weights name its conditions, and a time-windowed network
        marches in one of its inputs from an initial condition in the loss."""
        owner, problem = "GPTPINN", self.problem
        unknown = sorted(set(recipe.loss_weights) - set(self.conditions))
        if unknown:
            raise ValueError(f"{owner}: neuron.loss_weights has unknown condition(s) {unknown}; {problem.name} has "
                             f"{sorted(self.conditions)}")
        hard = recipe.hard_constraints and bool(problem.hard_conditions)
        if is_windowed(recipe.net):
            if recipe.net.time_input not in problem.input_names:
                raise ValueError(f"{owner}: neuron.net marches in {recipe.net.time_input!r}, but {problem.name}'s "
                                 f"inputs are {problem.input_names}")
            if not any(c.kind == "initial" for c in self.conditions.values()):
                raise ValueError(f"{owner}: a TimeWindows neuron.net needs an initial condition to march from; "
                                 f"{problem.name} has none")
            if hard and any(self.conditions[name].kind == "initial" for name in problem.hard_conditions):
                raise ValueError(f"{owner}: a TimeWindows neuron.net needs the initial condition in the loss (later "
                                 "windows replace it by continuity); set neuron.hard_constraints: false")
        return dataclasses.replace(recipe, hard_constraints=hard)

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
        """Neuron `index`'s full PINN at `params` (p,), built from the recipe, initialised from seed + index."""
        recipe = self.neuron
        torch.manual_seed(self.seed + index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = copy.deepcopy(recipe.net) if recipe.net is not None else MLP([20, 20, 20], "tanh")
            for embedding in net.modules():
                if isinstance(embedding, FourierFeatures):  # each neuron draws its own frequencies
                    embedding.seed += self.seed + index
            pinn = PINN(self.problem_at(params), net=net, derivatives=copy.deepcopy(recipe.derivatives),
                        hard_constraints=recipe.hard_constraints, loss_weights=recipe.loss_weights)
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
        """Train a full PINN at `params` (p,) with the problem's conditions on the bank's points (the recipe's
        `pde_grid` for the PDE residual where it gives one), along the recipe's optimization path."""
        start = time.perf_counter()
        recipe = self.neuron
        pinn = self._new_pinn(params, self.n_neurons)
        dtype = torch.float32 if recipe.precision == "float32" else torch.float64
        pinn = pinn.to(device=self.bank_pde.device, dtype=dtype)  # trained where the module lives (GPU or CPU)
        points = {name: self.point_sets[name].to(dtype) for name in pinn.conditions}
        if recipe.pde_grid is not None:
            points["pde"] = self.problem.domain.grid(recipe.pde_grid).to(device=self.bank_pde.device, dtype=dtype)
        loss, metrics = train_neuron(pinn, points, recipe)
        self.neuron_losses.append(loss)
        self.neuron_metrics.append(metrics)
        pinn = pinn.double()  # the bank is float64 whatever the training precision
        for p in pinn.parameters():
            p.requires_grad_(False)
        self.neuron_seconds.append(time.perf_counter() - start)
        return pinn

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
        return reduced_fields(self, name, c, rows)

    def residual_fn(self, params: Tensor, sparse: bool | None = None):
        """r(c): (M, n) -> (M, R) with |r|^2 the reduced physics loss for each parameter (see
        :func:`~lightning_pde.gptpinn.reduced.reduced_residual`: full GPT-PINN loss, or S2GPT's sparse one)."""
        return reduced_residual(self, params, sparse)

    def replaced_conditions_inhomogeneous(self, keep: set[str]) -> bool:
        """Whether a condition the sparse loss drops is inhomogeneous (then S2GPT's sum-to-one constraint holds;
        see :func:`~lightning_pde.gptpinn.reduced.replaced_conditions_inhomogeneous`)."""
        return inhomogeneous(self, keep)

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
        if self.neuron_metrics:  # the neuron's second-order phase, as the optimization path counts it
            metrics = self.neuron_metrics[-1]
            self.log("greedy/neuron_iterations", metrics["iterations"])
            self.log("greedy/neuron_evaluations", metrics["evaluations"])
            self.log("greedy/neuron_second_order_seconds", metrics["seconds"])
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
        checkpoint["gptpinn_neuron_metrics"] = [dict(m) for m in self.neuron_metrics]

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
        self.neuron_metrics = [dict(m) for m in checkpoint.get("gptpinn_neuron_metrics", [])]

    def require_bank(self) -> None:
        if self.n_neurons == 0:
            raise ValueError("GPTPINN: the neuron bank is empty (train it first, or load a checkpoint with neurons)")
