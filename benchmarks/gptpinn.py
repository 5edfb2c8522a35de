"""GPT-PINN / S2GPT-PINN benchmark: offline greedy time, online time (batched and one at a time, per solver),
relative L2 over off-grid test parameters against exact / reference solutions, and a full PINN's time per parameter.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gptpinn.py --pde helmholtz burgers --neurons 8 --steps 800

Writes benchmarks/results/gptpinn.json and docs/images/gptpinn_*.png. The S2GPT rows run the sparse online loss on
the same bank: the magic points are built from it by CollocationDownsampling's EIM steps (solution EIM on every
neuron, residual EIM at each greedily selected parameter), so GPT and S2GPT are compared at equal neurons.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from lightning_pde.callbacks.collocation_downsampling import CollocationDownsampling
from lightning_pde.callbacks.greedy_basis_selection import GreedyBasisSelection
from lightning_pde.modules.gptpinn import GPTPINN
from lightning_pde.problems import Burgers, Helmholtz, KleinGordon
from lightning_pde.reference import cole_hopf_burgers

ROOT = Path(__file__).resolve().parents[1]

SETUPS = {
    "helmholtz": dict(problem=Helmholtz(), parameter_grid={"a1": [1.0, 2.0, 11], "a2": [1.0, 4.0, 11], "k": [1.0, 1.0, 1]},
                      first_params=[2.0, 4.0, 1.0], solver="lstsq", neuron_hidden=[20, 20, 20, 20], pde_grid=[40, 40]),
    "burgers": dict(problem=Burgers(), parameter_grid={"nu": [0.005, 1.0, 129]}, first_params=[0.5025],
                    solver="gauss_newton", neuron_hidden=[20, 20, 20, 20], pde_grid=[48, 48]),
    "klein_gordon": dict(problem=KleinGordon(), parameter_grid={"alpha": [-2.0, -1.0, 10], "beta": [0.0, 1.0, 10],
                                                                "gamma": [0.0, 1.0, 10]},
                         first_params=[-1.5, 0.5, 0.5], solver="gauss_newton", neuron_hidden=[40, 40],
                         neuron_activation="cos", pde_grid=[40, 40]),
}


def test_params(name: str, m: int, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(m, 3, generator=generator, dtype=torch.float64)
    if name == "helmholtz":
        return torch.stack([1 + u[:, 0], 1 + 3 * u[:, 1], torch.ones(m, dtype=torch.float64)], 1)
    if name == "burgers":
        return torch.exp(np.log(0.005) + (np.log(1.0) - np.log(0.005)) * u[:, :1])
    # Klein-Gordon: beta = 0, gamma = 1 (exact u = x cos t for any alpha), alpha off the grid
    return torch.stack([-2 + u[:, 0], torch.zeros(m, dtype=torch.float64), torch.ones(m, dtype=torch.float64)], 1)


def reference(name: str, params: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    x, y = points[:, 0], points[:, 1]
    if name == "helmholtz":
        return torch.stack([Helmholtz(*p.tolist()).exact(points).reshape(-1) for p in params])
    if name == "klein_gordon":
        return (x * torch.cos(y)).expand(len(params), -1)
    xs, ts = torch.unique(x).numpy(), torch.unique(y).numpy()  # the test grid is 'ij' ordered (x, t)
    return torch.stack([torch.as_tensor(np.asarray(cole_hopf_burgers(xs, ts, float(p)))).reshape(-1)
                        for p in params[:, 0]])


def rel_l2(u: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return (u - ref).norm(dim=1) / ref.norm(dim=1)


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(name: str, neurons: int, steps: int, lbfgs: int, n_test: int) -> dict:
    setup = dict(SETUPS[name])
    module = GPTPINN(max_neurons=neurons, neuron_max_steps=steps, neuron_lbfgs_steps=lbfgs, test_grid=[50, 50],
                     **setup)
    trainer = pl.Trainer(max_epochs=200, callbacks=[GreedyBasisSelection()], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, inference_mode=False)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)
    offline = time.perf_counter() - start
    # S2GPT magic points from the same bank (EIM replay, float64)
    sparse = CollocationDownsampling()
    module.sparse = {"sum_to_one_weight": 1.0, "keep_conditions": []}
    sparse.neuron_added(module)
    for p in module.selected_params[1:]:
        sparse.residual_selected(module, p.reshape(1, -1))
    params = test_params(name, n_test, torch.Generator().manual_seed(7))
    ref = reference(name, params, module.points_test)
    out = {"pde": name, "neurons": module.n_neurons, "neuron_steps": steps, "neuron_lbfgs": lbfgs,
           "offline_s": offline, "neuron_s_mean": float(np.mean(module.neuron_seconds)),
           "selected": module.selected_params.tolist(), "max_losses": module.max_losses.tolist(),
           "magic_points": torch.cat([module.magic_u, module.magic_r]).tolist(), "n_test": n_test, "rows": []}
    solvers = [module.solver, "gd"] + (["gauss_newton"] if module.solver == "lstsq" else [])
    for variant, sp in (("GPT", False), ("S2GPT", True)):
        for solver in solvers:
            steps_s = {"gd": 2000}.get(solver, 20)
            lr = {"helmholtz": 0.05, "burgers": 0.02, "klein_gordon": 0.025}[name]
            solve = lambda P: module.solve(P, solver=solver, steps=steps_s, lr=lr, sparse=sp, warn=False)  # noqa
            c = solve(params)
            err = rel_l2(c @ module.columns("test")["u"].T, ref)
            batched = timed(lambda: solve(params), 2 if solver == "gd" else 3)
            single = timed(lambda: solve(params[:1]), 2 if solver == "gd" else 3)
            row = {"variant": variant, "solver": solver, "steps": steps_s, "mean_rel_l2": float(err.mean()),
                   "max_rel_l2": float(err.max()), "batched_s": batched, "per_param_batched_s": batched / n_test,
                   "single_s": single}
            out["rows"].append(row)
            print(f"{name:13s} {variant:6s} {solver:13s} mean {row['mean_rel_l2']:.2e} max {row['max_rel_l2']:.2e} "
                  f"{n_test} at once {batched:.3f}s  one {single:.4f}s", flush=True)
    out["full_pinn_s_per_param"] = out["neuron_s_mean"]
    plot(module, name, out)
    return out


def plot(module: GPTPINN, name: str, out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].semilogy(range(1, len(out["max_losses"]) + 1), out["max_losses"], "o-", label="GPT (greedy)")
    axes[0].set(xlabel="neurons n", ylabel="largest loss over the training set", title=f"{name}: greedy loss")
    axes[0].legend()
    sel = np.array(out["selected"])
    if sel.shape[1] == 1:
        axes[1].plot(sel[:, 0], np.arange(1, len(sel) + 1), "o")
        axes[1].set(xlabel=module.problem.parameter_names[0], ylabel="order selected")
    else:
        axes[1].scatter(sel[:, 0], sel[:, 1], c=np.arange(len(sel)), cmap="viridis")
        for i, s in enumerate(sel):
            axes[1].annotate(str(i + 1), s[:2])
        axes[1].set(xlabel=module.problem.parameter_names[0], ylabel=module.problem.parameter_names[1])
    axes[1].set_title("selected parameters")
    pts = module.point_sets["pde"]
    axes[2].scatter(pts[:, 0], pts[:, 1], s=1, c="0.8")
    axes[2].scatter(pts[module.magic_u, 0], pts[module.magic_u, 1], marker="o", label="solution EIM x^u")
    axes[2].scatter(pts[module.magic_r, 0], pts[module.magic_r, 1], marker="x", label="residual EIM x^r")
    axes[2].set(xlabel=module.problem.input_names[0], ylabel=module.problem.input_names[1], title="S2GPT magic points")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "images" / f"gptpinn_{name}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pde", nargs="+", default=["helmholtz", "burgers", "klein_gordon"], choices=sorted(SETUPS))
    parser.add_argument("--neurons", type=int, default=8)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--lbfgs", type=int, default=0)
    parser.add_argument("--n-test", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
    (ROOT / "docs" / "images").mkdir(parents=True, exist_ok=True)
    results = {"threads": torch.get_num_threads(), "args": vars(args), "pdes": []}
    path = ROOT / "benchmarks" / "results" / "gptpinn.json"
    for name in args.pde:
        results["pdes"].append(run(name, args.neurons, args.steps, args.lbfgs, args.n_test))
        path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
