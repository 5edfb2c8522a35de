"""DeepXDE's side of the peer benchmark (PyTorch backend), written as DeepXDE's own examples are.

    benchmarks/.peers-venv/bin/python benchmarks/peers/run_deepxde.py --problem burgers --steps 10000 \\
        --reference burgers.npz

DeepXDE defaults kept on purpose: Hammersley points; the PDE residual is evaluated on the BC/IC points too (they are
part of ``data.train_x_all``), so a step forwards more rows than in the other libraries; ``model.train`` runs its own
loss evaluation (``_test``, train and test set) every ``display_every=1000`` steps, which counts as training time
because every DeepXDE user pays it.
"""

from __future__ import annotations

import os
from importlib.metadata import version

os.environ["DDE_BACKEND"] = "pytorch"  # read once, at import; it outranks ~/.deepxde/config.json

import deepxde as dde  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from protocol import (LEARNING_RATE, PROBLEMS, Reference, TrainingClock, argument_parser, configure_torch, emit,
                      parse_args)  # noqa: E402


def poisson_data() -> dde.data.PDE:
    setup = PROBLEMS["poisson"]

    def pde(x, u):
        return -dde.grad.hessian(u, x, i=0, j=0) - dde.grad.hessian(u, x, i=1, j=1) - torch.sin(x[:, 0:1] + x[:, 1:2])

    geometry = dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0])
    boundary = dde.icbc.DirichletBC(geometry, lambda x: np.sin(x[:, 0:1] + x[:, 1:2]) / 2,
                                    lambda _, on_boundary: on_boundary)
    return dde.data.PDE(geometry, pde, [boundary], num_domain=setup["n_pde"], num_boundary=setup["n_boundary"])


def burgers_data() -> dde.data.TimePDE:
    setup = PROBLEMS["burgers"]
    nu = setup["nu"]

    def pde(x, u):
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - nu * u_xx

    geometry = dde.geometry.GeometryXTime(dde.geometry.Interval(-1.0, 1.0), dde.geometry.TimeDomain(0.0, 1.0))
    boundary = dde.icbc.DirichletBC(geometry, lambda x: 0.0, lambda _, on_boundary: on_boundary)
    initial = dde.icbc.IC(geometry, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    return dde.data.TimePDE(geometry, pde, [boundary, initial], num_domain=setup["n_pde"],
                            num_boundary=setup["n_boundary"], num_initial=setup["n_initial"])


class ClockCallback(dde.callbacks.Callback):
    """Drives a `TrainingClock` from DeepXDE's batch hooks."""

    def __init__(self, clock: TrainingClock, net: torch.nn.Module) -> None:
        super().__init__()
        self.clock, self.net = clock, net

    def on_batch_begin(self) -> None:
        self.clock.start()

    def on_batch_end(self) -> None:
        self.clock.step_done(self.model.train_state.step, self.net)


def rows_per_step(data: dde.data.PDE, n_conditions: int) -> dict[str, int]:
    """The network's input rows per step: BC/IC points (one block per condition) followed by ``train_x_all``,
    on which the PDE residual is evaluated (domain + boundary + initial points)."""
    starts = np.cumsum([0, *data.num_bcs])
    names = ["boundary", "initial"][:n_conditions]
    rows = {f"{name} (BC/IC loss)": int(starts[i + 1] - starts[i]) for i, name in enumerate(names)}
    rows["pde (domain + BC/IC points)"] = len(data.train_x) - int(starts[-1])
    return rows


def main() -> None:
    options = parse_args(argument_parser("DeepXDE"))
    configure_torch(options.seed, options.threads)
    dde.config.set_default_float("float32")
    dde.config.set_random_seed(options.seed)
    setup = PROBLEMS[options.problem]
    data = poisson_data() if options.problem == "poisson" else burgers_data()
    net = dde.nn.FNN([2, *setup["hidden"], 1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=LEARNING_RATE)
    clock = TrainingClock(options.steps, options.probe_every, Reference.load(options.reference))
    clock.probe(0, net)
    model.train(iterations=options.steps, callbacks=[ClockCallback(clock, net)], display_every=1000, verbose=0)
    rows = rows_per_step(data, 1 if options.problem == "poisson" else 2)
    notes = ("Hammersley points; PDE residual also on BC/IC points (DeepXDE default); Glorot-normal init; "
             "inputs not normalised; model.train's loss display every 1000 steps included")
    emit(clock.result("DeepXDE", version("deepxde"), options, rows, notes=notes))


if __name__ == "__main__":
    main()
