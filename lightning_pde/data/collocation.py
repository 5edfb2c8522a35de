"""Collocation points for PINNs: sampled from the problem's conditions, kept on the device, sharded across ranks."""

from __future__ import annotations

from collections.abc import Iterator

import pytorch_lightning as pl
import torch
from torch import Tensor

from lightning_pde.problems import Problem
from lightning_pde.problems.domain import SAMPLING_METHODS
from lightning_pde.spec import from_spec


class _RepeatedBatch:
    """Yields the same full batch `steps` times; on each new epoch asks its data module whether to resample.

    Resumable (Lightning's ``state_dict``/``load_state_dict`` loader protocol): after a mid-epoch checkpoint it
    serves only the rest of that epoch, so a resumed run follows the uninterrupted run's epochs exactly."""

    def __init__(self, datamodule: "CollocationDataModule", steps: int) -> None:
        self.datamodule, self.steps = datamodule, steps
        self.served, self._resume_at = 0, 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        self.datamodule.on_epoch_start()  # idempotent within an epoch, so also right for a resumed one
        start, self._resume_at = self._resume_at, 0
        for self.served in range(start + 1, self.steps + 1):
            yield self.datamodule.collocation_points

    def state_dict(self) -> dict[str, int]:
        return {"served": self.served}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._resume_at = int(state_dict.get("served", 0)) % self.steps


class _Chunks:
    """Yields consecutive chunks of a dict of equally long tensors (evaluation grids)."""

    def __init__(self, tensors: dict[str, Tensor], batch_size: int) -> None:
        self.tensors, self.batch_size = tensors, batch_size
        self.n = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for start in range(0, self.n, self.batch_size):
            yield {k: v[start:start + self.batch_size] for k, v in self.tensors.items()}


class CollocationDataModule(pl.LightningDataModule):
    """Full-batch collocation points for every condition of the module's problem.

    Every rank draws the same global point set from the same seed and keeps every `world_size`-th point starting
    at its rank, so the shards are disjoint and together are exactly the single-process set. Points are moved to
    the device once per (re)sampling, never per step.

    Args:
        n_points: points per condition, e.g. ``{"pde": 10000}``; conditions not named use the problem's defaults.
        sampling: ``uniform`` (i.i.d.) or ``sobol`` (scrambled Sobol, lower discrepancy).
        resample_every: draw new points every this many epochs; 0 keeps the first set for the whole run.
        steps_per_epoch: optimizer steps per epoch (each one a full batch).
        seed: seed of the point sets; epoch k of a resampling run uses seed + k.
        eval_batch_size: points per batch when scoring or predicting on the evaluation grid.
        problem: the problem; default: the trained module's ``problem`` attribute.
    """

    def __init__(self, n_points: dict[str, int] | None = None, sampling: str = "sobol", resample_every: int = 0,
                 steps_per_epoch: int = 100, seed: int = 0, eval_batch_size: int = 32768,
                 problem: Problem | None = None) -> None:
        super().__init__()
        if sampling not in SAMPLING_METHODS:
            raise ValueError(f"CollocationDataModule: sampling must be one of {SAMPLING_METHODS}, got {sampling!r}")
        for name, value, minimum in (("resample_every", resample_every, 0), ("steps_per_epoch", steps_per_epoch, 1),
                                     ("eval_batch_size", eval_batch_size, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"CollocationDataModule: {name} must be an integer >= {minimum}, got {value!r}")
        if n_points is not None and not isinstance(n_points, dict):
            raise ValueError(f"CollocationDataModule: n_points must map condition names to counts, got {n_points!r}")
        bad = {k: v for k, v in (n_points or {}).items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
        if bad:
            raise ValueError(f"CollocationDataModule: n_points values must be integers >= 1, got {bad}")
        self.n_points = dict(n_points or {})
        self.sampling, self.resample_every, self.steps_per_epoch = sampling, resample_every, steps_per_epoch
        self.seed, self.eval_batch_size = seed, eval_batch_size
        self.problem: Problem | None = from_spec(problem)
        self.collocation_points: dict[str, Tensor] = {}
        #: points added during training (e.g. by ResidualAdaptiveRefinement), kept across resampling
        self.added_points: dict[str, Tensor] = {}
        self.conditions: dict = {}
        self._sampled_epoch: int | None = None
        self._grid: dict[str, Tensor] | None = None

    # -- where the points go -------------------------------------------------------------------------------------
    @property
    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    @property
    def _device_and_dtype(self) -> tuple[torch.device, torch.dtype]:
        trainer = self.trainer
        if trainer is None or trainer.lightning_module is None:
            return torch.device("cpu"), torch.float32
        return trainer.strategy.root_device, trainer.lightning_module.dtype

    def setup(self, stage: str) -> None:
        if self.problem is None:
            module = self.trainer.lightning_module if self.trainer is not None else None
            self.problem = getattr(module, "problem", None)
            if not isinstance(self.problem, Problem):
                raise ValueError("CollocationDataModule: no problem given and the module has no `problem`")
        # Train on the module's conditions: a module with hard constraints drops the ones its output satisfies.
        module_conditions = getattr(self.trainer.lightning_module, "conditions", None) if self.trainer else None
        self.conditions = module_conditions or self.problem.conditions()
        unknown = sorted(set(self.n_points) - set(self.problem.conditions()))
        if unknown:
            raise ValueError(f"CollocationDataModule: n_points names unknown condition(s) {unknown}; "
                             f"{self.problem.name} has {sorted(self.problem.conditions())}")

    # -- training points ------------------------------------------------------------------------------------------
    def sample(self, epoch: int = 0) -> dict[str, Tensor]:
        """This rank's shard of the point set of `epoch`: ``{condition: (N_c / world_size, n_inputs)}`` on the
        device, in the module's dtype."""
        rank, world = self._rank_and_world
        device, dtype = self._device_and_dtype
        generator = torch.Generator().manual_seed(self.seed + epoch)
        points = {}
        for name, cond in (self.conditions or self.problem.conditions()).items():
            n = self.n_points.get(name, cond.n_points)
            if n < world:
                raise ValueError(f"CollocationDataModule: condition {name!r} has {n} points, fewer than the "
                                 f"{world} ranks that share them")
            points[name] = cond.sample(n, generator, self.sampling)[rank::world].to(device=device, dtype=dtype)
            if name in self.added_points:
                points[name] = torch.cat([points[name], self.added_points[name].to(device=device, dtype=dtype)])
        return points

    def add_points(self, name: str, points: Tensor) -> None:
        """Add this rank's `points` (N, n_inputs) to condition `name`, now and after every resampling."""
        if name not in self.collocation_points:
            raise KeyError(f"CollocationDataModule: no condition {name!r}; conditions: {sorted(self.collocation_points)}")
        points = points.detach().to(self.collocation_points[name])
        previous = self.added_points.get(name)
        self.added_points[name] = points if previous is None else torch.cat([previous, points.to(previous)])
        self.collocation_points[name] = torch.cat([self.collocation_points[name], points])

    def state_dict(self) -> dict:
        return {"added_points": {k: v.cpu() for k, v in self.added_points.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.added_points = dict(state_dict.get("added_points", {}))

    def on_epoch_start(self) -> None:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        # The set in force is the one drawn at the last multiple of resample_every (also right after a resume).
        current = epoch - epoch % self.resample_every if self.resample_every else 0
        if current != self._sampled_epoch:
            self.collocation_points = self.sample(current)
            self._sampled_epoch = current

    def to_dtype(self, dtype: torch.dtype) -> None:
        """Cast the current points (an optimizer switching to float64 calls this)."""
        self.collocation_points = {k: v.to(dtype) for k, v in self.collocation_points.items()}
        self.added_points = {k: v.to(dtype) for k, v in self.added_points.items()}

    def train_dataloader(self) -> _RepeatedBatch:
        return _RepeatedBatch(self, self.steps_per_epoch)

    # -- evaluation grid ------------------------------------------------------------------------------------------
    def evaluation_points(self) -> dict[str, Tensor]:
        """This rank's shard of the problem's evaluation grid: ``points`` (N, n_inputs), ``values``
        (N, n_outputs), on the device."""
        if self._grid is None:
            grid = self.problem.evaluation_grid()
            rank, world = self._rank_and_world
            device, _ = self._device_and_dtype
            # float64 targets: the error metric accumulates in float64 whatever the training precision.
            self._grid = {"points": grid.points[rank::world].to(device),
                          "values": grid.values[rank::world].to(device)}
        return self._grid

    def val_dataloader(self) -> _Chunks:
        return _Chunks(self.evaluation_points(), self.eval_batch_size)

    def test_dataloader(self) -> _Chunks:
        return self.val_dataloader()

    def predict_dataloader(self) -> _Chunks:
        # Every rank predicts the whole grid in order, so the written file is the grid itself.
        grid = self.problem.evaluation_grid()
        return _Chunks({"points": grid.points.to(self._device_and_dtype[0])}, self.eval_batch_size)
