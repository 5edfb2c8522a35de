"""The measurement protocol that every peer runner follows, so the three libraries are timed and scored alike.

This module imports only numpy and torch: it runs both in the project's venv and in ``benchmarks/.peers-venv``,
where lightning_pde is not installed.

A runner:

1. parses the common command line (:func:`argument_parser`, :func:`parse_args`) and calls :func:`configure_torch`;
2. builds its library's problem from :data:`PROBLEMS` and loads the reference (:class:`Reference`) that
   ``benchmarks/peers.py`` wrote;
3. creates a :class:`TrainingClock`, calls ``clock.probe(0, predict)`` before training, ``clock.start()`` right
   before the first optimizer step, and ``clock.step_done(step, predict)`` after every step (from its library's
   batch-end hook), which probes every ``--probe-every`` steps and at the last step with the clock paused;
4. prints ``clock.result(...)`` as the last line of its stdout (:func:`emit`).

Wall time is training only: start-up (imports, sampling, model building) is before ``start()`` and the error
probes are excluded by pausing the clock.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

#: The shared setups. Burgers: u_t + u u_x = nu u_xx on [-1, 1] x [0, 1], u(x, 0) = -sin(pi x), u(+-1, t) = 0
#: (Raissi et al. 2019, arXiv 1711.10561; the point counts are DeepXDE's Burgers example). Poisson: -Δu = sin(x1 + x2)
#: on [0, 1]^2 with u = sin(x1 + x2) / 2 on the boundary (the exact solution).
PROBLEMS: dict[str, dict] = {
    "poisson": {"hidden": [64, 64, 64], "n_pde": 2000, "n_boundary": 400,
                "input_names": ("x1", "x2"), "grid_shape": (101, 101)},
    "burgers": {"hidden": [32, 32, 32], "nu": 0.01 / math.pi, "n_pde": 2540, "n_boundary": 80, "n_initial": 160,
                "input_names": ("x", "t"), "grid_shape": (256, 100)},
}
LEARNING_RATE = 1e-3
#: marks the result line among whatever a library prints on stdout
RESULT_KEY = "peers_result"


def argument_parser(library: str) -> argparse.ArgumentParser:
    """The command line every runner takes; a runner may add its own options before :func:`parse_args`."""
    parser = argparse.ArgumentParser(description=f"Train one PINN with {library} and print one JSON line.")
    parser.add_argument("--problem", choices=sorted(PROBLEMS), required=True)
    parser.add_argument("--steps", type=int, required=True, help="full-batch Adam steps")
    parser.add_argument("--probe-every", type=int, default=500, help="steps between error probes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--reference", type=Path, required=library != "lightning-pde",
                        help="the .npz with `points` (N, 2) and `values` (N,) that benchmarks/peers.py writes")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    options = parser.parse_args(argv)
    for name in ("steps", "probe_every", "threads"):
        if getattr(options, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(options, name)}")
    return options


def configure_torch(seed: int, threads: int) -> None:
    """float32, `threads` intra-op threads, and every generator seeded with `seed`."""
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Reference:
    """The exact (Poisson) or Cole-Hopf (Burgers) solution on the evaluation grid.

    Args:
        points: (N, n_inputs) float64, columns in the problem's input order.
        values: (N,) or (N, 1) float64, the solution there.
    """

    def __init__(self, points: np.ndarray, values: np.ndarray) -> None:
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        self.values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        if len(self.points) != len(self.values):
            raise ValueError(f"Reference: {len(self.points)} points but {len(self.values)} values")
        #: the points as the networks take them: (N, n_inputs) float32
        self.points32 = torch.as_tensor(self.points, dtype=torch.float32)

    @classmethod
    def load(cls, path: Path) -> "Reference":
        """Read the .npz (``points``, ``values``) that ``benchmarks/peers.py`` writes."""
        with np.load(path) as data:
            return cls(data["points"], data["values"])

    def relative_l2(self, prediction: torch.Tensor | np.ndarray) -> float:
        """||prediction - u||_2 / ||u||_2 in float64; `prediction` (N,) or (N, 1)."""
        if isinstance(prediction, torch.Tensor):
            prediction = prediction.detach().cpu().numpy()
        prediction = np.asarray(prediction, dtype=np.float64).reshape(-1)
        return float(np.linalg.norm(prediction - self.values) / np.linalg.norm(self.values))


class TrainingClock:
    """Wall time of the training steps alone, with error probes paused out.

    Args:
        steps: the number of steps the run makes (the last one is always probed).
        probe_every: probe after every this many steps.
        reference: what the probes score against.
    """

    def __init__(self, steps: int, probe_every: int, reference: Reference) -> None:
        self.steps, self.probe_every, self.reference = steps, probe_every, reference
        self.probes: list[tuple[int, float, float]] = []
        self.excluded = 0.0
        self.started: float | None = None
        self.stopped: float | None = None
        self.last_step = 0

    def start(self) -> None:
        """Call right before the first optimizer step (idempotent)."""
        if self.started is None:
            self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Training seconds so far, probes excluded."""
        if self.started is None:
            return 0.0
        return (self.stopped or time.perf_counter()) - self.started - self.excluded

    def probe(self, step: int, predict: Callable[[torch.Tensor], torch.Tensor]) -> float:
        """Score ``predict(points)`` ((N, n_inputs) float32 -> (N,) or (N, 1)) with the clock paused."""
        paused = time.perf_counter()
        with torch.no_grad():
            error = self.reference.relative_l2(predict(self.reference.points32))
        end = self.stopped if self.stopped is not None else paused
        wall = end - self.started - self.excluded if self.started is not None else 0.0
        self.probes.append((step, wall, error))
        if self.started is not None and self.stopped is None:
            self.excluded += time.perf_counter() - paused
        return error

    def step_done(self, step: int, predict: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Call after optimizer step `step` (1-based) has finished."""
        self.last_step = step
        if step == self.steps:
            self.stopped = time.perf_counter()
        if step % self.probe_every == 0 or step == self.steps:
            self.probe(step, predict)

    def result(self, library: str, version: str, options: argparse.Namespace, rows_per_step: dict[str, int],
               notes: str = "", **extra) -> dict:
        """Everything the orchestrator needs from one run, as plain data."""
        if self.last_step != self.steps:
            raise RuntimeError(f"{library}: the run stopped after {self.last_step} of {self.steps} steps")
        wall = self.elapsed()
        # Steady state: from the first probe after step 0 on, so one-off warm-up in the first steps drops out.
        first = next((p for p in self.probes if 0 < p[0] < self.steps), None)
        steady = (self.steps - first[0]) / (wall - first[1]) if first is not None and wall > first[1] else None
        return {
            RESULT_KEY: True, "library": library, "version": version, "problem": options.problem,
            "steps": self.steps, "seed": options.seed, "threads": options.threads,
            "torch": torch.__version__, "python": platform.python_version(),
            "train_seconds": wall, "probe_seconds": self.excluded,
            "steps_per_second": self.steps / wall, "steady_steps_per_second": steady,
            "rows_per_step": sum(rows_per_step.values()), "rows": rows_per_step,
            "probes": [list(p) for p in self.probes], "final_rel_l2": self.probes[-1][2],
            "notes": notes, **extra,
        }


def emit(result: dict) -> None:
    """Print the result as the last line of stdout (libraries print banners before it)."""
    sys.stdout.flush()
    print(json.dumps(result), flush=True)

