"""Physics-informed neural network (Raissi, Perdikaris & Karniadakis 2019, arXiv 1711.10561) as a LightningModule."""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lightning_pde.derivatives import Autograd, DerivativeEngine, Fields, SinglePass
from lightning_pde.derivatives.base import FieldsView
from lightning_pde.modules.finite import check_finite_losses
from lightning_pde.metrics import PDEResidual, RelativeL2Error
from lightning_pde.nn import MLP
from lightning_pde.problems import Problem
from lightning_pde import CHECKPOINT_CLASS_KEY
from lightning_pde.spec import class_path, from_spec, to_spec
from lightning_pde.validation import boolean, nonnegative_float, positive_int


def checkpoint_hparams(hparams: dict[str, Any]) -> None:
    """Make `hparams` plain data in place: objects become specs; what cannot be (a lambda optimizer) is dropped,
    so ``load_from_checkpoint`` falls back to that argument's default."""
    for key in list(hparams):
        try:
            hparams[key] = to_spec(hparams[key])
        except TypeError:
            del hparams[key]


def checked_unknowns(problem: Problem) -> dict[str, float]:
    """The problem's ``unknowns`` as {name: initial value}, or a ValueError naming a bad entry."""
    unknowns = problem.unknowns
    if not isinstance(unknowns, dict):
        raise ValueError(f"{problem.name}: unknowns must map names to initial values, got {unknowns!r}")
    checked = {}
    for name, value in unknowns.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{problem.name}: unknowns names must be identifiers, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) < float("inf"):
            raise ValueError(f"{problem.name}: unknowns[{name!r}] must be a finite number (its initial value), "
                             f"got {value!r}")
        checked[name] = float(value)
    return checked


class PINN(pl.LightningModule):
    """A network u_theta(x) trained to make a problem's residuals vanish at collocation points.

    Loss = sum over the problem's conditions c of ``loss_weights[c] * mean(residual_c ** 2)``. A problem's unknown
    constants (``unknowns = {"nu": 0.05}``) become trainable scalars in :attr:`unknowns`, optimised with the network,
    logged as ``train/unknown_<name>`` and stored in the checkpoint.

    Args:
        problem: the PDE (a :class:`~lightning_pde.problems.Problem`), e.g. ``Burgers(nu=0.01/pi)``.
        net: the network; default ``MLP(hidden=[32, 32, 32], activation="tanh")``. An `MLP` built without sizes
            gets them from the problem.
        derivatives: derivative engine; default reverse-mode :class:`~lightning_pde.derivatives.Autograd`.
        loss_weights: weight per condition name (missing names weigh 1), e.g. ``{"initial": 10.0}``.
        normalize_inputs: map the problem's bounding box affinely onto [-1, 1]^d before the network.
        fused: evaluate all conditions' points in one network pass and one derivative pass per order (faster for
            small batches, where per-operation overhead dominates; derivatives are then also computed on boundary
            rows, as DeepXDE does).
        hard_constraints: use the problem's output transform (``problem.hard_constraint``) so that its
            ``hard_conditions`` hold exactly; those conditions then leave the loss.
        compile: compile the loss with ``torch.compile`` (fused kernels; the first step pays the compilation, a few
            seconds). Needs the :class:`~lightning_pde.derivatives.SinglePass` engine, whose loss contains no
            ``torch.autograd.grad``, and residuals with first and pure second derivatives only.
        evaluation_rows: network rows per chunk when scoring in validation and test: each batch of the evaluation
            grid is scored in chunks of ``evaluation_rows // derivatives.rows_per_point(n_inputs)`` points (Stein:
            2K + 1 rows a point), so their memory stays bounded whatever the size of the grid or of its batches.
        optimizer: optimizer factory (Lightning CLI ``OptimizerCallable``); default Adam with lr 1e-3.
        lr_scheduler: optional learning-rate scheduler factory (``LRSchedulerCallable``).

    Shapes: ``module(x)`` takes x (N, n_inputs), columns in ``problem.input_names`` order, returns (N, n_outputs).
    Validation and test log ``rel_l2`` (against the exact/reference solution on ``problem.evaluation_grid()``, over
    all outputs together: ||U - U_ref||_F / ||U_ref||_F; a system also logs ``rel_l2_<output>`` for each) and
    ``residual`` (mean |PDE residual| there); they need gradients, so the Trainer must run with
    ``inference_mode=False`` (the `lpde` CLI's default).
    """

    def __init__(
        self,
        problem: Problem,
        net: nn.Module | None = None,
        derivatives: DerivativeEngine | None = None,
        loss_weights: dict[str, float] | None = None,
        normalize_inputs: bool = True,
        hard_constraints: bool = False,
        fused: bool = True,
        compile: bool = False,
        evaluation_rows: int = 65536,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # Lightning warns that `net` is an nn.Module; checkpoint_hparams stores its spec, not the object.
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        checkpoint_hparams(self.hparams)
        # Checkpoints store specs (plain dicts); build them back into objects.
        problem, net, derivatives = from_spec(problem), from_spec(net), from_spec(derivatives)
        if not isinstance(problem, Problem):
            raise ValueError(f"PINN: problem must be a lightning_pde Problem, got {type(problem).__name__}")
        if net is not None and not isinstance(net, nn.Module):
            raise ValueError(f"PINN: net must be a network (an nn.Module such as MLP), got {net!r}")
        if derivatives is not None and not isinstance(derivatives, DerivativeEngine):
            raise ValueError(f"PINN: derivatives must be a derivative engine (Autograd, SinglePass, ...), got "
                             f"{derivatives!r}")
        if loss_weights is not None and not isinstance(loss_weights, dict):
            raise ValueError(f"PINN: loss_weights must map condition names to weights, got {loss_weights!r}")
        self.problem = problem
        self.net = net if net is not None else MLP()
        lower, upper = problem.domain.lower, problem.domain.upper
        center = (lower + upper) / 2 if normalize_inputs else torch.zeros_like(lower)
        inv_half_width = 2 / (upper - lower) if normalize_inputs else torch.ones_like(lower)
        if callable(getattr(self.net, "build", None)):
            # Networks that take their sizes from the problem (MLP, plugins' nets) follow MLP.build's signature.
            # Periods in the network's own (normalised) coordinates.
            periods = {name: period * float(inv_half_width[problem.input_names.index(name)])
                       for name, period in problem.periodic_inputs.items()}
            self.net.build(problem.n_inputs, problem.n_outputs, problem.input_names, periods)
        self.derivatives = derivatives if derivatives is not None else Autograd()
        self.hard_constraints, self.fused = hard_constraints, fused
        if fused and getattr(derivatives, "debias", False):
            raise ValueError(f"PINN: {type(derivatives).__name__}(debias=True) needs fused=False (each condition's "
                             "residual is estimated twice, from independent halves of the samples)")
        self.conditions = problem.conditions()
        if hard_constraints:
            if not problem.hard_conditions:
                raise ValueError(f"PINN: hard_constraints=True but {problem.name} has no hard-constraint transform")
            self.conditions = {k: v for k, v in self.conditions.items() if k not in problem.hard_conditions}
        weights = dict(loss_weights or {})
        #: how each condition's residual (N,) or (N, k) at its points (N, n_inputs) becomes a scalar loss;
        #: callbacks such as CausalWeighting replace an entry (training policy stays out of the problem).
        self.reductions: dict[str, Callable[[Tensor, Tensor], Tensor]] = {}
        unknown = sorted(set(weights) - set(self.conditions))
        if unknown:
            raise ValueError(f"PINN: loss_weights has unknown condition(s) {unknown}; "
                             f"{problem.name} has {sorted(self.conditions)}")
        self.loss_weights = {name: nonnegative_float("PINN", f"loss_weights[{name!r}]", weights.get(name, 1.0))
                             for name in self.conditions}
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.register_buffer("input_center", center.float(), persistent=False)
        self.register_buffer("input_scale", inv_half_width.float(), persistent=False)
        self.compile_loss = boolean("PINN", "compile", compile)
        self.evaluation_rows = positive_int("PINN", "evaluation_rows", evaluation_rows)
        if self.compile_loss and not isinstance(self.derivatives, SinglePass):
            raise ValueError(f"PINN: compile=True needs the SinglePass derivative engine (its loss has no "
                             f"torch.autograd.grad inside, which torch.compile cannot compile), got "
                             f"{type(self.derivatives).__name__}")
        #: the problem's unknown constants (inverse problems), trained with the network and kept in the checkpoint
        self.unknowns = nn.ParameterDict({name: nn.Parameter(torch.tensor(value, dtype=torch.float32))
                                          for name, value in checked_unknowns(problem).items()})
        self.check_conditions()
        self._compiled_losses: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None
        self.val_rel_l2, self.test_rel_l2 = RelativeL2Error(), RelativeL2Error()
        # systems: each output's error as well (the joint one is over all outputs together, as PINNacle scores)
        per_output = problem.output_names if problem.n_outputs > 1 else ()
        self.val_rel_l2_outputs = nn.ModuleDict({name: RelativeL2Error() for name in per_output})
        self.test_rel_l2_outputs = nn.ModuleDict({name: RelativeL2Error() for name in per_output})
        self.val_residual, self.test_residual = PDEResidual(), PDEResidual()

    def check_conditions(self) -> None:
        """Evaluate every residual at two sample points, so that a residual asking for an unknown input or output
        name, or an engine that cannot serve the problem or the network (Stein without DiffQuant on a quantized
        network), fails here at construction rather than at step one; a precision plugin that converts the
        network's layers (``SMXPrecision``) calls it again.
        With compile=True, a residual that SinglePass must take from reverse mode fails here too. A SinglePass engine
        without an explicit `second` is narrowed to the pure second derivatives the residuals ask for."""
        generator = torch.Generator().manual_seed(0)
        dtype = next(self.net.parameters(), torch.empty(0)).dtype  # a user may pass a network already in float64
        asked: set[int] = set()
        for name, cond in self.conditions.items():
            points, values = cond.split(cond.sample(2, generator, "uniform").to(dtype))
            try:
                fields = self.fields(points, values, dtype)
                cond.residual(fields)
                if getattr(self.derivatives, "debias", False):  # refuses residuals it has no unbiased loss for
                    fields.squared_residual(cond.residual)
            except (KeyError, ValueError, NotImplementedError, RuntimeError) as error:
                message = error.args[0] if isinstance(error, KeyError) and error.args else error
                raise ValueError(f"PINN: condition {name!r} of {self.problem.name} cannot be evaluated with the "
                                 f"{type(self.derivatives).__name__} engine: {message}") from error
            if self.compile_loss and fields.used_reverse:
                raise ValueError(f"PINN: compile=True, but condition {name!r} of {self.problem.name} asks for a mixed "
                                 "or third-order derivative, which SinglePass takes from reverse mode; use "
                                 "compile=False")
            asked.update(getattr(fields, "asked", ()))
        if isinstance(self.derivatives, SinglePass) and self.derivatives.second is None:
            # carry only the pure second derivatives the residuals use (Burgers: u_xx, not u_tt): a copy, so that an
            # engine object the caller shares is left as it was
            self.derivatives = copy.copy(self.derivatives)
            self.derivatives.second = [self.problem.input_names[i] for i in sorted(asked)]

    def losses(self, points: dict[str, Tensor]) -> dict[str, Tensor]:
        """:meth:`condition_losses`, through ``torch.compile`` when the module was built with compile=True."""
        if not self.compile_loss:
            return self.condition_losses(points)
        if self._compiled_losses is None:
            self._compiled_losses = torch.compile(self.condition_losses)
        return self._compiled_losses(points)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, n_inputs) -> u (N, n_outputs)."""
        n = self.net((x - self.input_center) * self.input_scale)
        return self.problem.hard_constraint(x, n) if self.hard_constraints else n

    def forward_laplacian(self, x: Tensor, laplacian_inputs: list[int],
                          diagonal: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """u, du/dx and the Laplacian over the inputs `laplacian_inputs` (indices) in one forward pass, for the
        :class:`~lightning_pde.derivatives.ForwardLaplacian` engine (Li et al. 2023, arXiv 2307.08066).

        x (N, n_inputs) -> u (N, n_outputs), Jacobian (N, n_inputs, n_outputs), Laplacian (N, n_outputs). The input
        normalisation is affine, so the propagation starts from its Jacobian diag(input_scale), the same at every
        point, and a zero Laplacian. With ``diagonal=True`` the last result is instead every d^2u/dx_i^2 for i in
        `laplacian_inputs`, (N, len(laplacian_inputs), n_outputs) (the :class:`~lightning_pde.derivatives.SinglePass`
        engine). A hard-constraint output transform u = g(x) + d(x) n(x) (affine in the network output n, as every
        built-in one is) is composed exactly: Delta u = Delta g + n Delta d + 2 grad d . grad n + d Delta n, with
        g, d and their derivatives from forward-mode autodiff of the transform (no network parameters in them).

        Raises:
            NotImplementedError: with a hard-constraint transform that is not affine in n.
            ValueError: when the network has no ``forward_laplacian(x, jacobian, laplacian, laplacian_inputs)``.
        """
        if not callable(getattr(self.net, "forward_laplacian", None)):
            raise ValueError(f"PINN: the network ({type(self.net).__name__}) has no forward_laplacian(x, jacobian, "
                             "laplacian, laplacian_inputs) method; use the Autograd engine")
        scale = self.input_scale.to(x.dtype)
        second = x.new_zeros(1, len(laplacian_inputs), x.shape[1]) if diagonal else x.new_zeros(1, x.shape[1])
        n, jac_n, lap_n = self.net.forward_laplacian((x - self.input_center) * self.input_scale, torch.diag(scale)[None],
                                                     second, laplacian_inputs)
        if not self.hard_constraints:
            return n, jac_n, lap_n
        (g, jac_g, lap_g), (d, jac_d, lap_d) = self._transform_terms(x, n.shape[1], laplacian_inputs, diagonal)
        u = g + d * n
        jacobian = jac_g + jac_d * n[:, None] + d[:, None] * jac_n
        cross = jac_d[:, laplacian_inputs] * jac_n[:, laplacian_inputs]  # (N, |S|, m)
        if diagonal:
            return u, jacobian, lap_g + lap_d * n[:, None] + 2 * cross + d[:, None] * lap_n
        return u, jacobian, lap_g + lap_d * n + 2 * cross.sum(1) + d * lap_n

    @torch.compiler.disable  # eager inside a compiled loss: torch.func transforms of the transform crash inductor
    def _transform_terms(self, x: Tensor, m: int, inputs: list[int], diagonal: bool) -> tuple[tuple, tuple]:
        """g and d of the hard-constraint transform u = g + d n, each as (value (N, m), Jacobian (N, n_inputs, m),
        Laplacian over `inputs` (N, m) or its diagonal (N, |S|, m)), by forward-mode autodiff of the transform.

        They depend on the points only (the transform holds no trained parameters: they are taken without gradient),
        so the last points' terms are kept and reused while the points are the same: a full-batch L-BFGS step
        evaluates its closure on one point set many times, and fixed collocation points stay the same every step.
        Nested forward mode through the transform cost up to 3x the network's own propagation (Wave1D, PInv:
        benchmarks/engine_cost.py)."""
        key = (m, tuple(inputs), diagonal)
        cached = getattr(self, "_transform_cache", None)
        if (cached is not None and cached[0] == key and cached[1].shape == x.shape and cached[1].dtype == x.dtype
                and cached[1].device == x.device and torch.equal(cached[1], x)):
            return cached[2]
        terms = self._transform_terms_at(x, m, inputs, diagonal)
        self._transform_cache = (key, x.detach().clone(), terms)
        return terms

    def _transform_terms_at(self, x: Tensor, m: int, inputs: list[int], diagonal: bool) -> tuple[tuple, tuple]:
        zeros = x.new_zeros(x.shape[0], m)
        transform = self.problem.hard_constraint
        if not getattr(self, "_transform_is_affine", False):  # checked once, on the first points
            with torch.no_grad():
                g0, g1, g2 = transform(x, zeros), transform(x, zeros + 1), transform(x, zeros + 2)
            if not torch.allclose(g2 - g1, g1 - g0, rtol=1e-5, atol=1e-6 * float(g1.abs().max().clamp_min(1.0))):
                raise NotImplementedError(f"PINN: {self.problem.name}'s hard-constraint transform is not affine in "
                                          "the network output (u = g(x) + d(x) n), so the forward Laplacian cannot "
                                          "compose it; use the Autograd engine")
            self._transform_is_affine = True
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        terms = []
        for fn in (lambda y: transform(y, zeros), lambda y: transform(y, zeros + 1) - transform(y, zeros)):
            def along(direction: Tensor, fn=fn) -> Tensor:
                return torch.func.jvp(fn, (x,), (direction.expand_as(x),))[1]

            def second(direction: Tensor, fn=fn) -> Tensor:
                return torch.func.jvp(lambda y: torch.func.jvp(fn, (y,), (direction.expand_as(y),))[1], (x,),
                                      (direction.expand_as(x),))[1]

            with torch.no_grad():
                jac = torch.func.vmap(along)(eye).permute(1, 0, 2)  # (N, n_inputs, m)
                diag = torch.func.vmap(second)(eye[inputs]).permute(1, 0, 2)  # (N, |S|, m)
                terms.append((fn(x), jac, diag if diagonal else diag.sum(1)))
        return terms[0], terms[1]

    def fields(self, x: Tensor, values: Tensor | None = None, dtype: torch.dtype | None = None) -> Fields:
        """The network's outputs and derivatives at `x` (N, n_inputs), by name (``f["u_xx"]``), with the domain's
        normals (``f.normal``), the unknown constants (``f.unknown("nu")``) and observed `values` (N, k) if given.
        `x` is cast to `dtype`, default the module's."""
        fields = self.derivatives.fields(self, x.to(dtype or self.dtype), self.problem.input_names,
                                         self.problem.output_names)
        fields.domain, fields.unknowns, fields.values = self.problem.domain, self.unknowns, values
        return fields

    def condition_losses(self, points: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean squared residual of each condition at its points ``{condition name: (N_c, n_inputs)}``."""
        missing = sorted(set(self.conditions) - set(points))
        if missing:
            raise KeyError(f"PINN: no points for condition(s) {missing} in the batch")
        names = list(self.conditions)
        # data conditions carry their observed values in trailing columns: split them off the coordinates
        split = {name: self.conditions[name].split(points[name]) for name in names}
        if self.fused:
            everything = self.fields(torch.cat([split[name][0] for name in names]))
            # plain Python sums: a tensor cumsum + .tolist() here was a graph break under torch.compile
            bounds = list(itertools.accumulate((len(points[name]) for name in names), initial=0))
            fields = {name: FieldsView(everything, slice(bounds[i], bounds[i + 1])) for i, name in enumerate(names)}
            for name in names:
                fields[name].values = split[name][1]
        else:
            fields = {name: self.fields(*split[name]) for name in names}
        losses = {}
        debias = getattr(self.derivatives, "debias", False)
        for name, cond in self.conditions.items():
            x = split[name][0]
            reduce = self.reductions.get(name)
            if debias:
                if reduce is not None:
                    raise ValueError(f"PINN: condition {name!r} has a weighted reduction (e.g. CausalWeighting), which "
                                     f"{type(self.derivatives).__name__}(debias=True) does not support")
                losses[name] = fields[name].squared_residual(cond.residual).mean()
                continue
            residual = cond.residual(fields[name])
            losses[name] = reduce(residual, x) if reduce is not None else residual.square().mean()
        return losses

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self.losses(batch)
        check_finite_losses(type(self).__name__, losses, self.global_step)
        loss = sum(self.loss_weights[name] * value for name, value in losses.items())
        # Lightning's self.log costs ~1 ms a call on the CPU, a quarter of a small PINN's step; the logger only
        # writes every log_every_n_steps anyway, so log on those steps only.
        if self.global_step % max(getattr(self._trainer, "log_every_n_steps", 1), 1) == 0:
            self.log_dict({f"train/loss_{name}": value.detach() for name, value in losses.items()})
            self.log("train/loss", loss.detach(), prog_bar=True)
            for name, value in self.unknowns.items():
                self.log(f"train/unknown_{name}", value.detach(), prog_bar=True)
        return loss

    def _score(self, batch: dict[str, Tensor], rel_l2: RelativeL2Error, residual: PDEResidual, stage: str,
               per_output: nn.ModuleDict) -> None:
        if torch.is_inference_mode_enabled():
            raise RuntimeError("PINN: validation and test need gradients for the PDE residual; create the Trainer "
                               "with inference_mode=False (the lpde CLI does this by default)")
        points, values = batch["points"], batch["values"]
        # the metrics detach what they are given, so each chunk's graph is freed before the next one is built
        chunk = max(1, self.evaluation_rows // self.derivatives.rows_per_point(points.shape[1]))
        with torch.enable_grad():
            for start in range(0, len(points), chunk):
                fields = self.fields(points[start:start + chunk])
                target = values[start:start + chunk].to(fields.u.dtype)
                rel_l2.update(fields.u, target)
                for k, metric in enumerate(per_output.values()):
                    metric.update(fields.u[:, k], target[:, k])
                for cond in self.conditions.values():
                    if cond.kind == "pde":
                        residual.update(cond.residual(fields))
        self.log(f"{stage}/rel_l2", rel_l2, prog_bar=stage == "val")
        for name, metric in per_output.items():
            self.log(f"{stage}/rel_l2_{name}", metric)
        self.log(f"{stage}/residual", residual)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score(batch, self.val_rel_l2, self.val_residual, "val", self.val_rel_l2_outputs)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score(batch, self.test_rel_l2, self.test_residual, "test", self.test_rel_l2_outputs)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return {"points": batch["points"], "u": self(batch["points"].to(self.dtype)).detach()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # lightning_pde.load(path) finds the class to rebuild from this key.
        checkpoint[CHECKPOINT_CLASS_KEY] = class_path(self)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler_factory(optimizer)}
