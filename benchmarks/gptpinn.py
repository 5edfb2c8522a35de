"""GPT-PINN / S2GPT-PINN benchmark: offline greedy time, online time (batched and one at a time, per solver),
relative L2 over off-grid test parameters against exact / reference solutions, and a full PINN's time per parameter.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gptpinn.py --pde helmholtz burgers --neurons 8 --steps 800

Writes benchmarks/results/gptpinn.json, and gptpinn_*.png only under ``--images DIR`` (``--images docs/images``
redraws the README's pictures). The S2GPT rows run the sparse online loss on
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
from lightning_pde.gptpinn import ExactNeuron
from lightning_pde.modules.gptpinn import GPTPINN
from lightning_pde.nn import MLP
from lightning_pde.nn.embeddings import FourierFeatures
from lightning_pde.problems import AllenCahn, Burgers, Helmholtz, KleinGordon
from lightning_pde.reference import cole_hopf_burgers
from lightning_pde.reference.allen_cahn import allen_cahn_spectral
from lightning_pde.reference.klein_gordon import klein_gordon_reference
from provenance import stamp

ROOT = Path(__file__).resolve().parents[1]

SETUPS = {
    # Fourier features: a plain tanh PINN stalls at relative L2 ~1 on the high-frequency neurons (a2 = 4), and a
    # 45 x 45 grid resolves sin(4 pi y) (a 30 x 30 one lets the neuron alias between the points).
    "helmholtz": dict(problem=Helmholtz(), parameter_grid={"a1": [1.0, 2.0, 11], "a2": [1.0, 4.0, 11], "k": [1.0, 1.0, 1]},
                      first_params=[2.0, 4.0, 1.0], solver="lstsq", pde_grid=[45, 45],
                      neuron={"net": MLP([32, 32], embedding=FourierFeatures(64, 1.0)), "precision": "float32"}),
    "burgers": dict(problem=Burgers(), parameter_grid={"nu": [0.005, 1.0, 129]}, first_params=[0.5025],
                    solver="gauss_newton", pde_grid=[48, 48],
                    neuron={"net": MLP([20, 20, 20, 20]), "precision": "float32"}),
    "klein_gordon": dict(problem=KleinGordon(), parameter_grid={"alpha": [-2.0, -1.0, 10], "beta": [0.0, 1.0, 10],
                                                                "gamma": [0.0, 1.0, 10]},
                         first_params=[-1.5, 0.5, 0.5], solver="gauss_newton", pde_grid=[40, 40],
                         neuron={"net": MLP([40, 40], "cos"), "precision": "float32"}),
    "allen_cahn": dict(problem=AllenCahn(), parameter_grid={"lam": [1e-4, 1e-3, 11], "eps": [1.0, 5.0, 11]},
                       first_params=[1e-3, 1.0], solver="gauss_newton", pde_grid=[64, 64],
                       neuron={"net": MLP([40, 40, 40])}),
}

# The papers' online optimizers ("parity"): GPT-PINN's plain GD for Burgers and Klein-Gordon; for Helmholtz the
# GPT-PINN baseline of the S2GPT repository uses Adam, lr 0.05, 1000 epochs (not GD).
PARITY = {"helmholtz": ("adam", 1000, 0.05), "burgers": ("gd", 2000, 0.02), "klein_gordon": ("gd", 2000, 0.025),
          "allen_cahn": ("gd", 2000, 0.0025)}
PAPER_GD_LR = {"helmholtz": 0.05, "burgers": 0.02, "klein_gordon": 0.025, "allen_cahn": 0.0025}


def test_params(name: str, m: int, generator: torch.Generator, test_set: str = "log") -> torch.Tensor:
    """`m` off-grid test parameters. ``log``: Burgers' nu and Allen-Cahn's lam log-uniform (as many small-nu
    shocks as large-nu cases: harder than the papers' sets); ``uniform``: uniform in the box, as the papers draw
    theirs (GPT-PINN: 25 random nu of linspace(0.005, 1, 129)). Klein-Gordon: beta = 0, gamma = 1 (where the exact
    solution is known) unless ``box``: uniform in the whole (alpha, beta, gamma) box, against the method-of-lines
    reference."""
    u = torch.rand(m, 3, generator=generator, dtype=torch.float64)
    if name == "helmholtz":
        return torch.stack([1 + u[:, 0], 1 + 3 * u[:, 1], torch.ones(m, dtype=torch.float64)], 1)
    if name == "burgers":
        if test_set == "uniform":
            return 0.005 + 0.995 * u[:, :1]
        return torch.exp(np.log(0.005) + (np.log(1.0) - np.log(0.005)) * u[:, :1])
    if name == "allen_cahn":  # lam log-uniform (or uniform) in [1e-4, 1e-3], eps uniform in [1, 5]
        lam = 1e-4 + 9e-4 * u[:, 0] if test_set == "uniform" else torch.exp(np.log(1e-4) + np.log(10.0) * u[:, 0])
        return torch.stack([lam, 1 + 4 * u[:, 1]], 1)
    # Klein-Gordon: beta = 0, gamma = 1 (exact u = x cos t for any alpha), alpha off the grid
    if test_set == "box":
        return torch.stack([-2 + u[:, 0], u[:, 1], u[:, 2]], 1)
    return torch.stack([-2 + u[:, 0], torch.zeros(m, dtype=torch.float64), torch.ones(m, dtype=torch.float64)], 1)


def reference(name: str, params: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    x, y = points[:, 0], points[:, 1]
    if name == "helmholtz":
        return torch.stack([Helmholtz(*p.tolist()).exact(points).reshape(-1) for p in params])
    xs, ts = torch.unique(x).numpy(), torch.unique(y).numpy()  # the test grid is 'ij' ordered (x, t)
    if name == "klein_gordon":
        if bool((params[:, 1] == 0).all() and (params[:, 2] == 1).all()):
            return (x * torch.cos(y)).expand(len(params), -1)
        # method of lines on 8x the grid's x intervals; its output grid is the test grid's
        return torch.stack([torch.as_tensor(klein_gordon_reference(*p, nx=len(xs), nt=len(ts), refine=8,
                                                                   t_end=float(ts[-1]))["u"]).reshape(-1)
                            for p in params.tolist()])
    if name == "allen_cahn":  # spectral ETDRK4 reference (~1e-8), evaluated at the grid's points
        return torch.stack([torch.as_tensor(allen_cahn_spectral(xs, ts, float(lam), float(eps))).reshape(-1)
                            for lam, eps in params.tolist()])
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


def s2gpt_replay(module: GPTPINN) -> list[float]:
    """S2GPT magic points on the bank, step by step as in the S2GPT greedy loop: with the first j neurons, the
    solution EIM step of neuron j, the largest sparse loss over the remaining candidates, then the residual EIM step
    at mu_{j+1} (here the GPT-selected parameter). Returns the largest sparse loss after each j."""
    full = {name: getattr(module, f"bank_{name}") for name in module.point_sets}
    selected = module.selected.clone()
    sparse = CollocationDownsampling()
    module.sparse = {"sum_to_one_weight": 1.0, "keep_conditions": []}
    grid, largest = module.training_params, []
    try:
        for j in range(1, len(selected) + 1):
            for name, bank in full.items():
                setattr(module, f"bank_{name}", bank[..., :j])
            module.selected = selected[:j]
            sparse.neuron_added(module)
            taken = (grid[:, None, :] - selected[None, :j]).abs().amax(-1).min(1).values < 1e-12
            _, loss = module.solve_with_loss(grid[~taken], warn=False, sparse=True)
            largest.append(float(loss.max()))
            if j < len(selected):
                sparse.residual_selected(module, selected[j:j + 1])
    finally:
        for name, bank in full.items():
            setattr(module, f"bank_{name}", bank)
        module.selected = selected
    return largest


def run(name: str, neurons: int, steps: int, lbfgs: int, n_test: int, exact: bool = False,
        save_dir: str | None = None, load: bool = False, test_set: str = "log",
        solver_steps: int | None = None, images: Path | None = None) -> dict:
    setup = dict(SETUPS[name])
    ckpt = Path(save_dir or ".") / f"{name}{'_exact' if exact else ''}.ckpt"
    if load:  # online measurements on a bank saved by an earlier run (its offline time is in that run's JSON)
        import lightning_pde

        module, offline = lightning_pde.load(ckpt), None
        hp = module.hparams  # report the bank's own settings (e.g. a checkpoint of `lpde fit --config ...`)
        steps, lbfgs = int(hp["neuron"]["max_steps"]), int(hp["neuron"]["second_order"]["iterations"])
        setup = {k: v for k, v in hp.items() if k in ("neuron", "pde_grid", "parameter_grid", "first_params",
                                                      "solver")}
        setup["problem"] = None
        module.sparse, module.magic_u, module.magic_r = None, module.magic_u[:0], module.magic_r[:0]
        module.eim_u, module.eim_r = module.eim_u[:, :0], module.eim_r[:, :0]
    else:
        # the configs' one L-BFGS run of `lbfgs` iterations per neuron (configs/gptpinn/*.yaml)
        second_order = {"iterations": lbfgs, "iterations_per_step": max(lbfgs, 1), "tolerance_grad": 1e-12,
                        "tolerance_change": 1e-15}
        setup["neuron"] = {**setup["neuron"], "max_steps": steps, "second_order": second_order}
        module = GPTPINN(max_neurons=neurons, test_grid=[50, 50], **setup)
        if exact:  # exact solutions as neurons (Helmholtz): measures the reduced model, not the PINN training
            def exact_neuron(params):
                module.neuron_seconds.append(0.0)
                return ExactNeuron(Helmholtz(*params.tolist()))

            module.train_neuron = exact_neuron
        trainer = pl.Trainer(max_epochs=200, callbacks=[GreedyBasisSelection()], logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             inference_mode=False)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(module)
        offline = time.perf_counter() - start
        if save_dir:
            trainer.save_checkpoint(ckpt)
    if solver_steps:  # the online iterations of the module's own solver (a config's solver_steps, for a bank
        module.solver_steps = solver_steps  # trained before that setting changed)
    s2_losses = s2gpt_replay(module)
    params = test_params(name, n_test, torch.Generator().manual_seed(7), test_set)
    ref = reference(name, params, module.points_test)
    tag = name + ("_exact" if exact else "") + ("_uniform" if test_set == "uniform" and name in ("burgers",
                                                                                                 "allen_cahn") else "")
    tag += "_box" if test_set == "box" else ""
    out = {"pde": name, "tag": tag, "exact_neurons": exact, "neurons": module.n_neurons, "neuron_steps": steps,
           "neuron_lbfgs": lbfgs,
           "setup": {k: module.hparams["neuron"] if k == "neuron" else v for k, v in setup.items() if k != "problem"},
           "offline_s": offline, "neuron_s_mean": float(np.mean(module.neuron_seconds or [0.0])),
           "neuron_s_total": float(np.sum(module.neuron_seconds or [0.0])), "neuron_losses": module.neuron_losses,
           "checkpoint": str(ckpt) if load else None,
           "selected": module.selected_params.tolist(), "max_losses": module.max_losses.tolist(),
           "max_losses_s2gpt": s2_losses, "magic_points": torch.cat([module.magic_u, module.magic_r]).tolist(),
           "n_test": n_test, "test_set": test_set, "test_params": params.tolist(), "rows": [], "errors": {}}
    # the neurons' own accuracy (each against the exact or reference solution at its parameter)
    if name != "klein_gordon" or test_set == "box":
        own = rel_l2(module.columns("test")["u"].T, reference(name, module.selected_params, module.points_test))
        out["neuron_rel_l2"] = own.tolist()
    parity, parity_steps, parity_lr = PARITY[name]
    from lightning_pde.gptpinn.solvers import gd_step_limit

    for variant, sp in (("GPT", False), ("S2GPT", True)):
        limit = gd_step_limit(module.residual_fn(params, sp), module.initial_coefficients(params))
        out[f"gd_lr_limit_{variant}"] = {"min": float(limit.min()), "median": float(limit.median()),
                                         "paper_lr": PAPER_GD_LR[name]}
        solvers = [(module.solver, module.solver_steps, None), (parity, parity_steps, parity_lr)]
        if module.solver == "lstsq":
            solvers.append(("gauss_newton", 20, None))
        for solver, steps_s, lr in solvers:
            solve = lambda P: module.solve(P, solver=solver, steps=steps_s, lr=lr, sparse=sp, warn=False)  # noqa
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c = solve(params)
                err = rel_l2(c @ module.columns("test")["u"].T, ref)
                batched = timed(lambda: solve(params), 2 if steps_s > 100 else 3)
                single = timed(lambda: solve(params[:1]), 2 if steps_s > 100 else 3)
            row = {"variant": variant, "solver": solver, "steps": steps_s, "lr": lr, "mean_rel_l2": float(err.mean()),
                   "max_rel_l2": float(err.max()), "batched_s": batched, "per_param_batched_s": batched / n_test,
                   "single_s": single, "magic_points": len(out["magic_points"]) if sp else None}
            out["rows"].append(row)
            out["errors"].setdefault(variant, {})[solver] = err.tolist()
            print(f"{tag:16s} {variant:6s} {solver:13s} mean {row['mean_rel_l2']:.2e} max {row['max_rel_l2']:.2e} "
                  f"{n_test} at once {batched:.3f}s  one {single:.4f}s", flush=True)
    out["full_pinn_s_per_param"] = out["neuron_s_mean"]
    if images is not None:
        plot(module, out, images)
    return out


def plot(module: GPTPINN, out: dict, images: Path) -> None:
    """Draw gptpinn_<tag>.png (bank, selection, test-set error, magic points) and its error histogram into `images`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, tag = out["pde"], out["tag"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.9))
    n = np.arange(1, len(out["max_losses"]) + 1)
    axes[0].semilogy(n, out["max_losses"], "o-", label="GPT (full grid)")
    axes[0].semilogy(n, out["max_losses_s2gpt"], "s--", label="S2GPT (2n-1 magic points)")
    low = min(min(out["max_losses"]), min(v for v in out["max_losses_s2gpt"][1:] or [1.0])) / 10
    axes[0].set_ylim(bottom=low)  # n = 1: one magic point for one unknown, sparse loss ~0 (below the axis)
    axes[0].set(xlabel="neurons n", ylabel="largest loss over the training set", title=f"{tag}: greedy loss")
    axes[0].legend(fontsize=7)
    sel = np.array(out["selected"])
    if sel.shape[1] == 1:
        axes[1].plot(sel[:, 0], np.arange(1, len(sel) + 1), "o")
        axes[1].set(xscale="log", xlabel=module.problem.parameter_names[0], ylabel="order selected")
    else:
        axes[1].scatter(sel[:, 0], sel[:, 1], c=np.arange(len(sel)), cmap="viridis")
        for i, s in enumerate(sel):
            axes[1].annotate(str(i + 1), s[:2])
        axes[1].set(xlabel=module.problem.parameter_names[0], ylabel=module.problem.parameter_names[1])
    axes[1].set_title("selected parameters")
    tp = np.array(out["test_params"])
    main = module.solver
    err_gpt, err_s2 = np.array(out["errors"]["GPT"][main]), np.array(out["errors"]["S2GPT"][main])
    if tp.shape[1] == 1 or (name == "klein_gordon" and out["test_set"] != "box"):
        axes[2].loglog(tp[:, 0] if name != "klein_gordon" else -tp[:, 0], err_gpt, "o", ms=3, label="GPT")
        axes[2].loglog(tp[:, 0] if name != "klein_gordon" else -tp[:, 0], err_s2, "x", ms=3, label="S2GPT")
        axes[2].set(xlabel=module.problem.parameter_names[0] if name != "klein_gordon" else "-alpha",
                    ylabel="relative L2")
        axes[2].legend(fontsize=7)
    else:  # two parameters, or Klein-Gordon's box seen along (beta, gamma), where the corner jumps live
        i, j = (1, 2) if name == "klein_gordon" else (0, 1)
        sc = axes[2].scatter(tp[:, i], tp[:, j], c=np.log10(err_gpt), cmap="magma", s=18)
        axes[2].scatter(sel[:, i], sel[:, j], marker="+", c="cyan", s=40)
        fig.colorbar(sc, ax=axes[2], label="log10 rel L2 (GPT)")
        axes[2].set(xlabel=module.problem.parameter_names[i], ylabel=module.problem.parameter_names[j])
    axes[2].set_title(f"test-set error ({main}); GPT mean {err_gpt.mean():.2e}", fontsize=9)
    pts = module.point_sets["pde"]
    axes[3].scatter(pts[:, 0], pts[:, 1], s=1, c="0.8")
    axes[3].scatter(pts[module.magic_u, 0], pts[module.magic_u, 1], marker="o", label="solution EIM x^u")
    axes[3].scatter(pts[module.magic_r, 0], pts[module.magic_r, 1], marker="x", label="residual EIM x^r")
    axes[3].set(xlabel=module.problem.input_names[0], ylabel=module.problem.input_names[1], title="S2GPT magic points")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(images / f"gptpinn_{tag}.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.logspace(np.log10(min(err_gpt.min(), err_s2.min())), np.log10(max(err_gpt.max(), err_s2.max())), 25)
    ax.hist(err_gpt, bins=bins, alpha=0.6, label="GPT")
    ax.hist(err_s2, bins=bins, alpha=0.6, label="S2GPT")
    ax.set(xscale="log", xlabel="relative L2 over the test parameters", ylabel="count",
           title=f"{tag}: {out['neurons']} neurons, {out['n_test']} off-grid tests")
    ax.legend()
    fig.tight_layout()
    fig.savefig(images / f"gptpinn_{tag}_errors.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pde", nargs="+", default=["helmholtz", "burgers", "klein_gordon"], choices=sorted(SETUPS))
    parser.add_argument("--neurons", type=int, default=8)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--lbfgs", type=int, default=0)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--exact-neurons", action="store_true", help="Helmholtz only: exact solutions as neurons")
    parser.add_argument("--save", default=None, help="folder for the greedy stage's checkpoints (the banks)")
    parser.add_argument("--load", action="store_true", help="skip the greedy stage: load the banks from --save "
                        "(<save>/<pde>.ckpt, e.g. the last.ckpt of `lpde fit --config configs/gptpinn/<pde>.yaml`)")
    parser.add_argument("--test-set", choices=("log", "uniform", "box"), default="log",
                        help="Burgers nu / Allen-Cahn lam log-uniform (default) or uniform (the papers' sets); "
                        "box: Klein-Gordon over its whole parameter box (default: beta = 0, gamma = 1)")
    parser.add_argument("--solver-steps", type=int, default=None,
                        help="iterations of the module's online solver (default: the bank's own solver_steps)")
    parser.add_argument("--out", default="gptpinn.json", help="file name under benchmarks/results/")
    parser.add_argument("--images", type=Path, default=None,
                        help="draw the pictures into this folder (docs/images redraws the README's; default: none)")
    args = parser.parse_args()
    if args.test_set == "box" and args.pde != ["klein_gordon"]:  # before any greedy stage runs
        parser.error(f"--test-set box is for --pde klein_gordon only, got {args.pde}")
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
    if args.images is not None:
        args.images.mkdir(parents=True, exist_ok=True)
    results = {**stamp(), "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "pdes": []}
    path = ROOT / "benchmarks" / "results" / args.out
    for name in args.pde:
        results["pdes"].append(run(name, args.neurons, args.steps, args.lbfgs, args.n_test, args.exact_neurons,
                                   args.save, args.load, args.test_set, args.solver_steps, args.images))
        path.write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
