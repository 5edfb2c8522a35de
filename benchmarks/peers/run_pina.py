"""PINA's side of the peer benchmark, written as PINA's own tutorials are.

    benchmarks/.peers-venv/bin/python benchmarks/peers/run_pina.py --problem poisson --steps 5000 \\
        --reference poisson.npz

Burgers is PINA's zoo ``BurgersProblem``; Poisson is a ``SpatialProblem`` written here (the zoo's Poisson problem
has another forcing). Uniform random points (``discretise_domain``'s default), one step per epoch
(``batch_size=None``). The network is PINA's ``FeedForward``, re-initialised Xavier-normal with zero biases like
the other two libraries (PINA's default is torch's Kaiming-uniform).
"""

from __future__ import annotations

import warnings
from importlib.metadata import version

import torch
from lightning.pytorch import Callback, seed_everything

from pina import Condition, LabelTensor, Trainer
from pina.domain import CartesianDomain
from pina.equation import Equation
from pina.equation.zoo import PoissonEquation
from pina.model import FeedForward
from pina.optim import TorchOptimizer
from pina.problem import SpatialProblem
from pina.problem.zoo import BurgersProblem
from pina.solver import PhysicsInformedSingleModelSolver

from protocol import (LEARNING_RATE, PROBLEMS, Reference, TrainingClock, argument_parser, configure_torch, emit,
                      parse_args)


def sin_sum(points: LabelTensor) -> torch.Tensor:
    return torch.sin(points.extract(["x"]) + points.extract(["y"]))


def boundary_residual(input_: LabelTensor, output_: LabelTensor) -> torch.Tensor:
    # FixedValue takes only a constant; the Dirichlet data here varies along the boundary.
    return output_ - sin_sum(input_) / 2


class Poisson(SpatialProblem):
    """-Δu = sin(x + y) on [0, 1]^2, u = sin(x + y) / 2 on the boundary."""

    output_variables = ["u"]
    spatial_domain = CartesianDomain({"x": [0, 1], "y": [0, 1]})
    domains = {"D": spatial_domain, "boundary": spatial_domain.partial()}
    conditions = {
        # PoissonEquation's residual is Δu - f, so f = -sin(x + y).
        "D": Condition(domain="D", equation=PoissonEquation(forcing_term=lambda p: -sin_sum(p))),
        "boundary": Condition(domain="boundary", equation=Equation(boundary_residual)),
    }


def build_problem(problem: str):
    """The PINA problem with its domains discretised as `protocol.PROBLEMS` says."""
    setup = PROBLEMS[problem]
    if problem == "poisson":
        pina_problem, counts = Poisson(), {"D": setup["n_pde"], "boundary": setup["n_boundary"]}
    else:
        pina_problem = BurgersProblem(nu=setup["nu"])
        counts = {"D": setup["n_pde"], "boundary": setup["n_boundary"], "t0": setup["n_initial"]}
    for domain, n in counts.items():
        # One call per domain: discretise_domain takes a single n.
        pina_problem.discretise_domain(n=n, mode="random", domains=domain)
    return pina_problem


def xavier_network(n_inputs: int, hidden: list[int]) -> FeedForward:
    net = FeedForward(input_dimensions=n_inputs, output_dimensions=1, layers=list(hidden), func=torch.nn.Tanh)
    for layer in net.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_normal_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return net


class ClockCallback(Callback):
    """Drives a `TrainingClock` from Lightning's batch hooks (PINA's Trainer is a Lightning Trainer)."""

    def __init__(self, clock: TrainingClock, predict) -> None:
        self.clock, self.predict = clock, predict

    def on_train_batch_start(self, trainer, solver, batch, batch_idx) -> None:
        self.clock.start()

    def on_train_batch_end(self, trainer, solver, outputs, batch, batch_idx) -> None:
        self.clock.step_done(trainer.global_step, self.predict)


def main() -> None:
    options = parse_args(argument_parser("PINA"))
    configure_torch(options.seed, options.threads)
    seed_everything(options.seed, verbose=False)
    setup = PROBLEMS[options.problem]
    problem = build_problem(options.problem)
    solver = PhysicsInformedSingleModelSolver(
        problem=problem, model=xavier_network(len(problem.input_variables), setup["hidden"]),
        optimizer=TorchOptimizer(torch.optim.Adam, lr=LEARNING_RATE))
    labels = problem.input_variables  # (x, y) or (x, t): the column order of the reference points

    def predict(points: torch.Tensor) -> torch.Tensor:
        return solver(LabelTensor(points, labels)).tensor

    clock = TrainingClock(options.steps, options.probe_every, Reference.load(options.reference))
    clock.probe(0, predict)
    trainer = Trainer(solver=solver, max_epochs=options.steps, batch_size=None, accelerator="cpu", devices=1,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[ClockCallback(clock, predict)])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        trainer.train()
    rows = {name: len(points) for name, points in problem.discretised_domains.items()}
    notes = ("uniform random points; FeedForward re-initialised Xavier-normal (PINA's default is Kaiming-uniform); "
             "inputs not normalised; one epoch per step (batch_size=None)")
    emit(clock.result("PINA", version("pina-mathlab"), options, rows, notes=notes))


if __name__ == "__main__":
    main()
