"""The second-order optimizers of lightning_pde.optimizers side by side on a small PINN: the same Adam warm-up, then
each of torch's L-BFGS, BFGS, SSBFGS, SSBroyden and Gauss-Newton from the same weights, in float64.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimizers.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimizers.py --problem burgers --iterations 2000

Each optimizer runs until its iteration budget is spent (`--iterations`; `--gn-iterations` for Gauss-Newton, whose
iterations cost a Jacobian each) or it converges, in ``step`` calls of 50 iterations, as the Lightning callbacks drive
L-BFGS. Prints and records the final loss, the relative L2 error against the exact (Poisson2D) or Cole-Hopf
(Burgers) solution on the problem's evaluation grid, the iterations, the loss-and-gradient evaluations and the wall
time of the second-order phase. Writes ``benchmarks/results/optimizers.json`` (``--out``: another name there, or a
path) with the provenance of :func:`provenance.stamp`. Timings need the machine to itself; errors do not.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from provenance import stamp
from torch import Tensor

from lightning_pde.derivatives import Forward
from lightning_pde.modules.pinn import PINN
from lightning_pde.nn import MLP
from lightning_pde.optimizers import BFGS, SSBFGS, GaussNewton, PINNResiduals, SSBroyden
from lightning_pde.problems import Burgers, Poisson2D

RESULTS = Path(__file__).resolve().parent / "results"
PROBLEMS: dict[str, Callable[[int, int], object]] = {
    "poisson2d": lambda n_pde, n_boundary: Poisson2D(n_pde=n_pde, n_boundary=n_boundary),
    "burgers": lambda n_pde, n_boundary: Burgers(),
}
STEP_ITERATIONS = 50


def loss_of(pinn: PINN, points: dict[str, Tensor]) -> Tensor:
    return sum(pinn.loss_weights[name] * value for name, value in pinn.condition_losses(points).items())


def rel_l2(pinn: PINN) -> float:
    grid = pinn.problem.evaluation_grid()
    with torch.no_grad():
        u = pinn(grid.points.to(pinn.dtype))
    return float((u - grid.values).norm() / grid.values.norm())


def second_order(name: str, pinn: PINN, points: dict[str, Tensor], iterations: int, gn_iterations: int) -> dict:
    """Run optimizer `name` on `pinn` from its current weights; returns what it reached."""
    params = list(pinn.parameters())
    if name == "GaussNewton":
        optimizer = GaussNewton(params, max_iter=min(STEP_ITERATIONS, gn_iterations), max_eval=4 * STEP_ITERATIONS,
                                tolerance_change=0)
        closure = PINNResiduals(pinn, points)
        budget = gn_iterations
    else:
        # max_eval: room for line searches that need more than one trial, so a step ends on its iteration budget
        kwargs = {"lr": 1.0, "max_iter": STEP_ITERATIONS, "max_eval": 4 * STEP_ITERATIONS, "tolerance_grad": 1e-12,
                  "tolerance_change": 0.0,
                  "line_search_fn": "strong_wolfe"}
        if name == "LBFGS":
            optimizer = torch.optim.LBFGS(params, history_size=50, **kwargs)
        else:
            optimizer = {"BFGS": BFGS, "SSBFGS": SSBFGS, "SSBroyden": SSBroyden}[name](params, **kwargs)

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(pinn, points)
            loss.backward()
            return loss

        budget = iterations
    start = time.perf_counter()
    done = 0
    while done < budget:
        group = optimizer.param_groups[0]
        group["max_iter"] = min(STEP_ITERATIONS, budget - done)
        before = int(optimizer.state[params[0]].get("n_iter", 0))
        optimizer.step(closure)
        step_iterations = int(optimizer.state[params[0]].get("n_iter", 0)) - before
        done += step_iterations
        if step_iterations < group["max_iter"]:  # converged, or no further progress possible
            break
    seconds = time.perf_counter() - start
    state = optimizer.state[params[0]]
    return {"optimizer": name, "loss": float(loss_of(pinn, points).detach()), "rel_l2": rel_l2(pinn),
            "iterations": int(state.get("n_iter", 0)), "function_evaluations": int(state.get("func_evals", 0)),
            "seconds": seconds, "stop_reason": getattr(optimizer, "stats", {}).get("stop_reason")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="poisson2d")
    parser.add_argument("--hidden", type=int, nargs="+", default=[20, 20])
    parser.add_argument("--n-pde", type=int, default=500)
    parser.add_argument("--n-boundary", type=int, default=100)
    parser.add_argument("--adam", type=int, default=1000, help="Adam warm-up steps (lr 1e-3)")
    parser.add_argument("--iterations", type=int, default=500, help="quasi-Newton iteration budget")
    parser.add_argument("--gn-iterations", type=int, default=50, help="Gauss-Newton iteration budget")
    parser.add_argument("--optimizers", nargs="+", default=["LBFGS", "BFGS", "SSBFGS", "SSBroyden", "GaussNewton"],
                        choices=["LBFGS", "BFGS", "SSBFGS", "SSBroyden", "GaussNewton"])
    parser.add_argument("--out", default="optimizers.json", help="file name under benchmarks/results/, or a path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    problem = PROBLEMS[args.problem](args.n_pde, args.n_boundary)
    # forward-mode derivatives: they compose with torch.func, so PINNResiduals forms Gauss-Newton's Jacobian point
    # by point (with Autograd it falls back to one backward pass per residual row, tens of times slower)
    pinn = PINN(problem, net=MLP(hidden=args.hidden, activation="tanh"), derivatives=Forward()).double()
    generator = torch.Generator().manual_seed(0)
    counts = {"pde": args.n_pde}
    points = {name: cond.sample(counts.get(name, min(cond.n_points, args.n_boundary)), generator, "sobol").double()
              for name, cond in pinn.conditions.items()}
    n_parameters = sum(p.numel() for p in pinn.parameters())
    print(f"{args.problem}: MLP {args.hidden} tanh ({n_parameters} parameters), points "
          f"{ {k: len(v) for k, v in points.items()} }, float64, 1 thread")

    adam = torch.optim.Adam(pinn.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(args.adam):
        adam.zero_grad(set_to_none=True)
        loss = loss_of(pinn, points)
        loss.backward()
        adam.step()
    warm_up = {"steps": args.adam, "seconds": time.perf_counter() - start,
               "loss": float(loss_of(pinn, points).detach()), "rel_l2": rel_l2(pinn)}
    print(f"Adam warm-up: {args.adam} steps, {warm_up['seconds']:.1f} s, loss {warm_up['loss']:.3e}, "
          f"rel L2 {warm_up['rel_l2']:.3e}")
    weights = copy.deepcopy(pinn.state_dict())

    rows = []
    print(f"{'optimizer':>12} {'loss':>10} {'rel L2':>10} {'iters':>6} {'evals':>6} {'seconds':>8}  stop")
    for name in args.optimizers:
        pinn.load_state_dict(weights)
        row = second_order(name, pinn, points, args.iterations, args.gn_iterations)
        rows.append(row)
        print(f"{name:>12} {row['loss']:10.3e} {row['rel_l2']:10.3e} {row['iterations']:6d} "
              f"{row['function_evaluations']:6d} {row['seconds']:8.1f}  {row['stop_reason'] or ''}")

    path = Path(args.out) if ("/" in args.out or Path(args.out).is_absolute()) else RESULTS / args.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**stamp(threads=1), "args": vars(args), "n_parameters": n_parameters,
                                "points": {k: len(v) for k, v in points.items()}, "warm_up": warm_up,
                                "results": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
