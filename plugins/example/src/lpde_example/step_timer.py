"""Training throughput as a logged metric."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from lightning_pde.validation import positive_int


class StepTimer(Callback):
    """Log ``train/steps_per_second`` every `every_n_steps` optimizer steps: the steps since the last log divided
    by the wall time they took (so start-up and validation before the first step are not counted).

    Args:
        every_n_steps: logging interval in optimizer steps, >= 1.
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        self.every_n_steps = positive_int("StepTimer", "every_n_steps", every_n_steps)
        self.steps_per_second: float | None = None
        self._start: float | None = None
        self._start_step = 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self._start is None:
            self._start, self._start_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        steps = trainer.global_step - self._start_step
        if self._start is None or steps < self.every_n_steps:
            return
        now = time.perf_counter()
        self.steps_per_second = steps / max(now - self._start, 1e-12)
        pl_module.log("train/steps_per_second", self.steps_per_second, on_step=True, on_epoch=False)
        self._start, self._start_step = now, trainer.global_step

    def state_dict(self) -> dict[str, Any]:
        return {"steps_per_second": self.steps_per_second}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps_per_second = state_dict.get("steps_per_second")
