"""Stop training at the first non-finite loss term, naming the term and the step.

A NaN or Inf in one loss term poisons every parameter at the next optimizer step; continuing only overwrites good
checkpoints with NaN weights. Every lightning-pde module calls :func:`check_finite_losses` on its named terms before
it returns the loss, so the step with the bad term never reaches the optimizer, and Lightning writes no checkpoint
on an exception: the last checkpoint written before that step is kept as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or Inf during training."""


def check_finite_losses(owner: str, losses: Mapping[str, Tensor], step: int) -> None:
    """Raise :class:`NonFiniteLossError` naming every non-finite term of `losses` (scalars) at `step`.

    One device synchronisation per call: the terms are checked together, and one by one only when something is
    wrong. Under torch.distributed the terms are summed across ranks first (one small all-reduce), so every rank
    raises at the same step."""
    if not losses:
        return
    values = torch.stack([value.detach().reshape(()).float() for value in losses.values()])
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # NaN and Inf survive a sum: every rank sees a bad term of any rank and all stop together, instead of the
        # healthy ranks waiting forever in the next gradient all-reduce.
        values = values.clone()
        torch.distributed.all_reduce(values)
    if bool(torch.isfinite(values).all()):
        return
    bad = ", ".join(f"{name}={value:g}" for name, value in zip(losses, values.tolist()) if not math.isfinite(value))
    raise NonFiniteLossError(f"{owner}: non-finite loss term at step {step}: {bad}. Training stopped before this "
                             f"step's update; the last checkpoint written before it is unchanged")
