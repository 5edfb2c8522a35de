"""GPT-PINN / S2GPT-PINN: reduced fields against autograd, batched solvers against per-row references, EIM,
greedy selection (argmax, resume, DDP), CLI end to end and bad input."""

import copy
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import lightning_pde
from lightning_pde.callbacks.collocation_downsampling import CollocationDownsampling
from lightning_pde.callbacks.greedy_basis_selection import GreedyBasisSelection
from lightning_pde.derivatives import Autograd
from lightning_pde.gptpinn import ExactNeuron, batched_conditions, eim_step, solve_batched
from lightning_pde.modules.gptpinn import GPTPINN
from lightning_pde.nn import MLP
from lightning_pde.problems import AllenCahn, Burgers, Helmholtz, KleinGordon

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(neuron={"net": MLP([8]), "max_steps": 30}, pde_grid=[10, 10], test_grid=[8, 8], n_condition_points=16)


def neuron(**recipe):
    """TINY's neuron recipe with `recipe` on top."""
    return {**TINY["neuron"], **recipe}


def helmholtz(**kw):
    args = dict(problem=Helmholtz(), parameter_grid={"a1": [1.0, 2.0, 3], "a2": [1.0, 2.0, 3], "k": [1.0, 1.0, 1]},
                max_neurons=3, solver="lstsq", **TINY)
    args.update(kw)
    return GPTPINN(**args)


def fit(module, callbacks=(), **trainer_kw):
    trainer = pl.Trainer(max_epochs=50, callbacks=list(callbacks), logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, inference_mode=False, **trainer_kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)
    return trainer


@pytest.fixture(scope="module")
def burgers_bank():
    module = GPTPINN(Burgers(), {"nu": [0.05, 0.5, 6]}, max_neurons=3, **TINY)
    fit(module)
    return module


class Combination(nn.Module):
    """u = sum_i c_i Psi_i(x), through autograd (the reference for the precomputed bank)."""

    def __init__(self, neurons, c):
        super().__init__()
        self.neurons, self.c = neurons, c

    def forward(self, x):
        return sum(ci * pinn(x) for ci, pinn in zip(self.c, self.neurons))


def test_reduced_residual_matches_autograd_of_the_combined_network(burgers_bank):
    m = burgers_bank
    params = torch.tensor([[0.07], [0.3], [0.45]], dtype=torch.float64)
    c = torch.randn(3, m.n_neurons, dtype=torch.float64)
    r = m.residual_fn(params, sparse=False)(c)
    for j in range(3):
        conditions = Burgers(nu=float(params[j])).conditions()
        net = Combination(m.neurons, c[j])
        parts = []
        for name, cond in conditions.items():
            points = m.point_sets["pde" if cond.kind == "pde" else name]
            res = cond.residual(Autograd().fields(net, points, ("x", "t"), ("u",))).reshape(-1)
            parts.append(res / len(res) ** 0.5)
        torch.testing.assert_close(r[j], torch.cat(parts).detach(), rtol=1e-8, atol=1e-10)


def test_batched_conditions_broadcast_parameters_per_row():
    params = torch.tensor([[-1.5, 0.2, 0.3], [-1.0, 0.0, 1.0]], dtype=torch.float64)
    pde = batched_conditions(KleinGordon(), params)["pde"]

    class F:
        def __getitem__(self, key):
            return {"x": torch.tensor([0.5]), "t": torch.tensor([0.0])}.get(key, torch.ones(2, 1))

    r = pde.residual(F())
    for j, p in enumerate(params.tolist()):
        expect = KleinGordon(*p).conditions()["pde"].residual(F())[j]
        torch.testing.assert_close(r[j], expect.double())


@pytest.mark.parametrize("solver", ["gauss_newton", "lstsq", "adam", "gd"])
def test_batched_solvers_match_per_row_least_squares(solver):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 30, 4, generator=g, dtype=torch.float64)
    b = torch.randn(5, 30, generator=g, dtype=torch.float64)
    residual = lambda c: (a @ c.unsqueeze(-1)).squeeze(-1) - b  # noqa: E731
    c, loss = solve_batched(residual, torch.zeros(5, 4, dtype=torch.float64), solver,
                            steps=3000 if solver in ("adam", "gd") else 30, lr=0.01)
    for j in range(5):
        ref = torch.linalg.lstsq(a[j], b[j].unsqueeze(-1)).solution.squeeze(-1)
        tol = 1e-8 if solver in ("gauss_newton", "lstsq") else 2e-3
        torch.testing.assert_close(c[j], ref, rtol=tol, atol=tol)
    torch.testing.assert_close(loss, residual(c).square().sum(-1))


def test_gauss_newton_solves_a_nonlinear_batch():
    target = torch.tensor([[0.5, -1.0], [2.0, 0.3]], dtype=torch.float64)
    residual = lambda c: torch.cat([c**3 - target**3, c - target], dim=1)  # noqa: E731
    c, loss = solve_batched(residual, torch.ones(2, 2, dtype=torch.float64), "gauss_newton", steps=50)
    torch.testing.assert_close(c, target, rtol=1e-7, atol=1e-7)


def test_eim_interpolates_its_snapshots_exactly():
    g = torch.Generator().manual_seed(1)
    snaps = torch.randn(50, 5, generator=g, dtype=torch.float64)
    basis, idx = torch.zeros(50, 0, dtype=torch.float64), torch.zeros(0, dtype=torch.long)
    for i in range(5):
        basis, idx = eim_step(basis, idx, snaps[:, i])
    assert len(set(idx.tolist())) == 5
    square = basis[idx]
    torch.testing.assert_close(torch.diagonal(square), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(torch.triu(square, 1), torch.zeros_like(square))
    # interpolation at the magic points reproduces every snapshot everywhere
    coeff = torch.linalg.solve(square, snaps[idx])
    torch.testing.assert_close(basis @ coeff, snaps, rtol=1e-9, atol=1e-9)


def test_greedy_selects_the_argmax_of_an_independent_loop(caplog):
    m = helmholtz(max_neurons=2)
    with caplog.at_level("INFO"):
        fit(m)
    # one progress line per neuron (the greedy stage is long and the configs turn the progress bar off)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GPTPINN neuron")]
    assert len(lines) == 2 and lines[0].startswith("GPTPINN neuron 1/2 at (a1=1.5, a2=1.5, k=1) trained in")
    assert f"largest reduced loss {float(m.max_losses[0]):.3e}" in lines[0]
    first, second = m.selected_params
    torch.testing.assert_close(first, torch.tensor([1.5, 1.5, 1.0], dtype=torch.float64))
    # loop over candidates one at a time with only the first neuron
    single = helmholtz(max_neurons=1)
    fit(single)
    losses = {tuple(p.tolist()): float(single.solve_with_loss(p.reshape(1, -1))[1])
              for p in single.training_params if not torch.equal(p, first)}
    best = max(losses, key=losses.get)
    assert tuple(second.tolist()) == best
    assert m.max_losses[0] == pytest.approx(losses[best], rel=1e-9)


def test_greedy_resumes_from_a_checkpoint_mid_way(tmp_path):
    straight = helmholtz(max_neurons=3)
    fit(straight)
    first = helmholtz(max_neurons=2)
    trainer = fit(first)
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    resumed = resume_helmholtz(tmp_path / "mid.ckpt", max_neurons=3)
    torch.testing.assert_close(resumed.selected_params, straight.selected_params)
    torch.testing.assert_close(resumed.max_losses, straight.max_losses)


def resume_helmholtz(ckpt_path, max_neurons):
    """A Helmholtz GPT-PINN with `max_neurons`, fitted on from the checkpoint at `ckpt_path`."""
    resumed = helmholtz(max_neurons=max_neurons)
    trainer = pl.Trainer(max_epochs=50, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, inference_mode=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(resumed, ckpt_path=ckpt_path)
    return resumed


def test_s2gpt_magic_points_and_sparse_solve(tmp_path):
    m = GPTPINN(Burgers(), {"nu": [0.05, 0.5, 6]}, max_neurons=3, **TINY)
    trainer = fit(m, [GreedyBasisSelection(), CollocationDownsampling()])
    n = m.n_neurons
    points = torch.cat([m.magic_u, m.magic_r])
    assert len(points) == 2 * n - 1 and len(set(points.tolist())) == 2 * n - 1
    assert m.eim_u.dtype == torch.float64
    params = torch.tensor([[0.1], [0.2]], dtype=torch.float64)
    r = m.residual_fn(params)(torch.ones(2, n, dtype=torch.float64) / n)
    assert r.shape == (2, 2 * n - 1 + 1)  # magic-point residuals and the sum-to-one penalty
    trainer.save_checkpoint(tmp_path / "s2.ckpt")
    loaded = lightning_pde.load(tmp_path / "s2.ckpt")
    torch.testing.assert_close(loaded.magic_u, m.magic_u)
    torch.testing.assert_close(loaded.solve(params), m.solve(params))
    torch.testing.assert_close(loaded.predict(params, m.points_test[:7]), m.predict(params)[:, :7])


def test_bad_input(tmp_path, burgers_bank):
    m = burgers_bank
    with pytest.warns(UserWarning, match="outside the training box"):
        c = m.solve(torch.tensor([[0.9]]))
    assert torch.isfinite(c).all()
    with pytest.raises(ValueError, match=r"params must have shape \(M, 1\)"):
        m.solve(torch.ones(2, 3))
    with pytest.raises(ValueError, match="parameter_grid"):
        GPTPINN(Burgers(), {"mu": [0, 1, 3]})
    with pytest.raises(ValueError, match="solver must be one of"):
        GPTPINN(Burgers(), {"nu": [0.1, 1, 3]}, solver="newton")
    empty = GPTPINN(Burgers(), {"nu": [0.1, 1, 3]}, **TINY)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(empty)
    trainer.save_checkpoint(tmp_path / "empty.ckpt")
    loaded = lightning_pde.load(tmp_path / "empty.ckpt")
    with pytest.raises(ValueError, match="neuron bank is empty"):
        loaded.solve(torch.tensor([[0.5]]))


def lpde(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1"}
    return subprocess.run([sys.executable, "-m", "lightning_pde", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


CLI_TINY = ["--model.max_neurons=3", "--model.neuron.max_steps=20", "--model.neuron.second_order.iterations=0",
            "--model.pde_grid=[10,10]", "--model.neuron.pde_grid=[10,10]", "--model.test_grid=[8,8]",
            "--model.neuron.net.init_args.hidden=[8]", "--model.n_condition_points=16", "--model.first_params=null"]


@pytest.mark.parametrize("name", ["burgers", "burgers_s2gpt", "helmholtz_s2gpt", "allen_cahn"])
def test_cli_end_to_end_tiny(name, tmp_path):
    from lightning_pde.cli import main

    extra = {"helmholtz_s2gpt": ["--model.parameter_grid={a1: [1.0, 2.0, 3], a2: [1.0, 2.0, 3], k: [1.0, 1.0, 1]}"],
             "allen_cahn": ["--model.parameter_grid={lam: [0.0001, 0.001, 3], eps: [1.0, 5.0, 3]}",
                            "--model.neuron.pde_grid=[10, 4]"]}.get(name, ["--model.parameter_grid={nu: [0.05, 0.5, 6]}"])
    tiny = list(CLI_TINY)
    if name == "allen_cahn":  # its neurons are time-windowed networks: shrink the windows' MLP
        tiny.remove("--model.neuron.net.init_args.hidden=[8]")
        tiny.remove("--model.neuron.pde_grid=[10,10]")
        tiny += ["--model.neuron.net.init_args.net.init_args.hidden=[8]", "--model.neuron.net.init_args.n_windows=2"]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            main(["fit", "--config", str(ROOT / "configs" / "gptpinn" / f"{name}.yaml"), *tiny, *extra,
                  f"--trainer.default_root_dir={tmp_path}"])
    finally:
        os.chdir(cwd)
    (last,) = tmp_path.rglob("last.ckpt")
    module = lightning_pde.load(last)
    assert module.n_neurons == 3 and module.selected_params.shape[0] == 3
    loaded = GPTPINN.load_from_checkpoint(last)
    params = module.training_params[:4]
    torch.testing.assert_close(loaded.solve(params, warn=False), module.solve(params, warn=False))


def test_ddp_two_ranks_select_like_one_process(tmp_path):
    config = str(ROOT / "configs" / "gptpinn" / "burgers.yaml")
    args = ["fit", "--config", config, *CLI_TINY, "--model.parameter_grid={nu: [0.05, 0.5, 7]}"]
    (tmp_path / "one").mkdir()
    one = lpde(*args, f"--trainer.default_root_dir={tmp_path / 'one'}", cwd=tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    (tmp_path / "two").mkdir()
    two = lpde(*args, "--trainer.strategy=ddp", "--trainer.devices=2", f"--trainer.default_root_dir={tmp_path / 'two'}",
               cwd=tmp_path / "two")
    assert two.returncode == 0, two.stderr[-3000:]
    assert "distributed_backend=gloo" in two.stderr + two.stdout
    (a,), (b,) = [[lightning_pde.load(p) for p in (tmp_path / run).rglob("last.ckpt")] for run in ("one", "two")]
    torch.testing.assert_close(a.selected_params, b.selected_params)
    torch.testing.assert_close(a.max_losses, b.max_losses, rtol=1e-6, atol=1e-12)


HELMHOLTZ_SELECTED = [[2.0, 4.0, 1.0], [1.0, 4.0, 1.0], [1.9, 4.0, 1.0], [2.0, 3.7, 1.0], [1.0, 1.0, 1.0]]


@pytest.fixture(scope="module")
def exact_bank():
    """Helmholtz bank built from exact solutions: any error online is the online machinery's, not the neurons'."""
    m = helmholtz(parameter_grid={"a1": [1.0, 2.0, 11], "a2": [1.0, 4.0, 11], "k": [1.0, 1.0, 1]},
                  pde_grid=[30, 30], test_grid=[25, 25])
    for p in HELMHOLTZ_SELECTED:
        m.add_neuron(ExactNeuron(Helmholtz(*p)), torch.tensor(p, dtype=torch.float64))
    return m


def exact_errors(m, params, **kw):
    u = m.predict(params, warn=False, **kw)
    ref = torch.stack([Helmholtz(*p.tolist()).exact(m.points_test).reshape(-1) for p in params])
    return (u - ref).norm(dim=1) / ref.norm(dim=1)


@pytest.mark.parametrize("solver", ["lstsq", "gauss_newton"])
def test_exact_neurons_are_reproduced_online(exact_bank, solver):
    params = torch.tensor(HELMHOLTZ_SELECTED, dtype=torch.float64)
    assert exact_errors(exact_bank, params, solver=solver, sparse=False).max() < 1e-8
    # between two close neurons the reduced model interpolates: far better than either neuron alone
    mid = torch.tensor([[1.95, 4.0, 1.0], [2.0, 3.85, 1.0]], dtype=torch.float64)
    err = exact_errors(exact_bank, mid, solver=solver, sparse=False)
    assert err.max() < 3e-2, err
    alone = exact_bank.initial_coefficients(mid) @ exact_bank.columns("test")["u"].T  # the nearest neuron, c = e_k
    ref = torch.stack([Helmholtz(*p.tolist()).exact(exact_bank.points_test).reshape(-1) for p in mid])
    assert (err < (alone - ref).norm(dim=1) / ref.norm(dim=1)).all()


def test_s2gpt_on_exact_neurons_needs_no_sum_to_one_for_homogeneous_boundaries(exact_bank):
    m = copy.deepcopy(exact_bank)
    sparse = CollocationDownsampling(sum_to_one_weight=1.0)
    m.sparse = {"sum_to_one_weight": 1.0, "keep_conditions": []}
    sparse.neuron_added(m)
    for p in m.selected_params[1:]:
        sparse.residual_selected(m, p.reshape(1, -1))
    n = m.n_neurons
    params = torch.tensor([[1.95, 4.0, 1.0], [2.0, 3.85, 1.0]], dtype=torch.float64)
    # u = 0 on the boundary holds for every combination: no penalty row, the residual is the magic points only
    assert not m.replaced_conditions_inhomogeneous(set())
    assert m.residual_fn(params)(torch.ones(2, n, dtype=torch.float64)).shape == (2, 2 * n - 1)
    selected = m.selected_params
    assert exact_errors(m, selected, solver="lstsq", sparse=True).max() < 1e-8
    # near the neurons the 2n - 1 magic points interpolate well (GPT on the full grid: 5e-4 and 2e-2)
    assert (exact_errors(m, params, solver="lstsq", sparse=True) < 0.1).all()


def test_gd_warns_above_its_stability_limit_and_converges_below(exact_bank):
    from lightning_pde.gptpinn.solvers import gd_step_limit

    params = torch.tensor([[1.95, 4.0, 1.0]], dtype=torch.float64)
    residual = exact_bank.residual_fn(params, sparse=False)
    c0 = exact_bank.initial_coefficients(params)
    limit = float(gd_step_limit(residual, c0)[0])
    assert limit < 0.05  # u_xx ~ (a pi)^2 u: the papers' lr 0.05 is far above the limit for Helmholtz
    with pytest.warns(UserWarning, match="stability limit"):
        c, loss = solve_batched(residual, c0, "gd", steps=30, lr=0.05)
    assert not torch.isfinite(loss).all() or loss[0] > residual(c0).square().sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c, loss = solve_batched(residual, c0, "gd", steps=200, lr=0.5 * limit)
    assert loss[0] < residual(c0).square().sum()


def test_bank_matches_fresh_autograd_of_fourier_float32_neurons():
    from lightning_pde.nn.embeddings import FourierFeatures

    m = helmholtz(max_neurons=2, neuron=neuron(net=MLP([8], embedding=FourierFeatures(8)), precision="float32"))
    fit(m)
    assert m.n_neurons == 2
    for i, pinn in enumerate(m.neurons):
        assert next(pinn.parameters()).dtype == torch.float64
        fields = Autograd().fields(pinn, m.points_pde, ("x", "y"), ("u",))
        for j, key in enumerate(m.keys):
            torch.testing.assert_close(m.bank_pde[j, :, i], fields[key].reshape(-1).detach(), rtol=1e-10,
                                       atol=1e-10)
        torch.testing.assert_close(m.bank_test[0, :, i], pinn(m.points_test).reshape(-1))


@pytest.mark.parametrize("problem, grid", [(Burgers(), {"nu": [0.05, 0.5, 4]}),
                                           (AllenCahn(), {"lam": [1e-4, 1e-3, 3], "eps": [1.0, 5.0, 3]}),
                                           (Helmholtz(), {"a1": [1.0, 2.0, 3], "a2": [1.0, 2.0, 3], "k": [1.0, 1.0, 1]})])
@pytest.mark.parametrize("sparse", [False, True])
def test_chain_rule_jacobian_matches_forward_mode_per_coefficient(problem, grid, sparse, monkeypatch):
    """The chain-rule Jacobian equals forward mode per coefficient; the field derivatives come from backward passes
    (one per residual component: two for Allen-Cahn's periodic pair u, u_x), never from a vmapped forward mode."""
    from lightning_pde.gptpinn.solvers import jacobian

    m = GPTPINN(problem, grid, **TINY)
    for i, p in enumerate(m.training_params[:3]):  # untrained neurons: any fields do
        m.add_neuron(m._new_pinn(p, i), p)
    if sparse:
        m.sparse = {"sum_to_one_weight": 2.0, "keep_conditions": ["initial", "periodic"]
                    if isinstance(problem, AllenCahn) else []}
        m.magic_u, m.magic_r = torch.tensor([3, 17, 40]), torch.tensor([8, 60])
    params = m.training_params[-2:]
    residual = m.residual_fn(params, sparse=sparse)
    c = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    vmaps, real_vmap = [], torch.func.vmap
    monkeypatch.setattr(torch.func, "vmap", lambda *a, **k: vmaps.append(1) or real_vmap(*a, **k))
    r, jac = jacobian(residual, c)
    assert not vmaps
    monkeypatch.undo()
    r_ref, jac_ref = jacobian(residual, c, generic=True)
    assert m._pointwise_verdicts[("sparse", sparse)]
    torch.testing.assert_close(r, r_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jac, jac_ref, rtol=1e-9, atol=1e-9)
    # Gauss-Newton's normal equations, accumulated over chunks of 16 rows, equal those of the full Jacobian
    import lightning_pde.gptpinn.reduced as reduced

    monkeypatch.setattr(reduced, "NORMAL_CHUNK_ENTRIES", 16)
    r_normal, jtj, jtr = residual.normal_equations(c)
    torch.testing.assert_close(r_normal, r_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jtj, jac_ref.transpose(1, 2) @ jac_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(jtr, (jac_ref.transpose(1, 2) @ r_ref.unsqueeze(-1)).squeeze(-1), rtol=1e-9, atol=1e-9)


def test_neuron_lbfgs_phase_lowers_each_neurons_loss():
    """neuron.second_order: after the same Adam steps, the L-BFGS phase must bring the neuron's training loss (and its
    error against the exact solution) well below Adam's alone; the losses are recorded and saved."""
    errors, losses = {}, {}
    for lbfgs in (0, 60):
        m = helmholtz(max_neurons=1, neuron=neuron(net=MLP([16]), max_steps=30, second_order={"iterations": lbfgs}))
        pinn = m.train_neuron(torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64))
        losses[lbfgs] = m.neuron_losses[-1]
        exact = Helmholtz(1.0, 1.0).exact(m.points_test).reshape(-1)
        errors[lbfgs] = float((pinn(m.points_test).reshape(-1) - exact).norm() / exact.norm())
    assert losses[60] < 0.1 * losses[0]
    assert errors[60] < 0.5 * errors[0]


def test_gauss_newton_stops_once_every_row_has_converged(burgers_bank, monkeypatch):
    """Early exit of the Levenberg-Marquardt loop: far fewer than `steps` Jacobians, the same coefficients as the
    full `steps` iterations (GN_RTOL < 0 disables the exit)."""
    from lightning_pde.gptpinn import solvers

    params = torch.tensor([[0.07], [0.2], [0.33], [0.45]], dtype=torch.float64)
    results = {}
    for label, rtol in (("early", solvers.GN_RTOL), ("full", -1.0)):
        monkeypatch.setattr(solvers, "GN_RTOL", rtol)
        residual = burgers_bank.residual_fn(params, sparse=False)
        calls = []
        inner = residual.normal_equations  # one J^T J per Levenberg-Marquardt iteration
        residual.normal_equations = lambda c: calls.append(1) or inner(c)
        c, loss = solve_batched(residual, burgers_bank.initial_coefficients(params), "gauss_newton", steps=60)
        results[label] = (len(calls), c, loss)
    early, full = results["early"], results["full"]
    assert full[0] == 60 and early[0] < 30
    torch.testing.assert_close(early[2], full[2], rtol=1e-8, atol=1e-14)
    torch.testing.assert_close(early[1], full[1], rtol=1e-5, atol=1e-7)


def test_model_checkpoint_saves_every_greedy_step_and_resumes(tmp_path):
    """The configs' ModelCheckpoint writes a checkpoint after every neuron (it skips saving while global_step is
    unchanged, so each greedy step must advance it); resuming from the 2-neuron one gives the straight run's bank."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    straight = helmholtz(max_neurons=3)
    trainer = pl.Trainer(max_epochs=50, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         inference_mode=False, callbacks=[ModelCheckpoint(dirpath=tmp_path, save_top_k=-1,
                                                                          save_on_train_epoch_end=True,
                                                                          filename="{epoch}")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(straight)
    saved = sorted(tmp_path.glob("epoch=*.ckpt"))
    assert [p.name for p in saved] == ["epoch=0.ckpt", "epoch=1.ckpt", "epoch=2.ckpt"]
    counts = [len(torch.load(p, weights_only=False)["state_dict"]["selected"]) for p in saved]
    assert counts == [1, 2, 3]
    resumed = resume_helmholtz(tmp_path / "epoch=1.ckpt", max_neurons=3)
    torch.testing.assert_close(resumed.selected_params, straight.selected_params)
    torch.testing.assert_close(resumed.bank_test, straight.bank_test)


def test_neurons_train_on_their_own_finer_grid_and_the_bank_stays_on_pde_grid(monkeypatch):
    """neuron.pde_grid: the neuron's PDE residual is fitted on the finer grid (Burgers' thin shocks), its bank
    column is stored on pde_grid (the online cost does not grow); a grid of the wrong length is a clear error."""
    from lightning_pde.modules import PINN

    sizes = []
    losses = PINN.condition_losses
    monkeypatch.setattr(PINN, "condition_losses", lambda self, points: sizes.append(len(points["pde"]))
                        or losses(self, points))
    m = GPTPINN(Burgers(), {"nu": [0.05, 0.5, 3]}, max_neurons=1,
                **{**TINY, "neuron": neuron(max_steps=3, pde_grid=[24, 12])})
    m.add_neuron(m.train_neuron(torch.tensor([0.1], dtype=torch.float64)), torch.tensor([0.1]))
    assert set(sizes) == {24 * 12}
    assert m.bank_pde.shape[1:] == (10 * 10, 1)
    with pytest.raises(ValueError, match=r"neuron.pde_grid must have one entry per input \('x', 't'\), got \[24\]"):
        GPTPINN(Burgers(), {"nu": [0.05, 0.5, 3]}, **{**TINY, "neuron": neuron(pde_grid=[24])})


def test_log_spaced_parameter_grid():
    """[low, high, count, 'log']: a geometric axis with the box's exact ends; bad spacings are clear errors."""
    m = GPTPINN(Burgers(), {"nu": [0.005, 1.0, 9, "log"]}, **TINY)
    nu = m.training_params[:, 0]
    assert nu[0] == 0.005 and nu[-1] == 1.0
    torch.testing.assert_close(nu[1:] / nu[:-1], torch.full((8,), 200 ** (1 / 8), dtype=torch.float64))
    assert GPTPINN(Burgers(), {"nu": [0.5, 0.5, 1, "log"]}, **TINY).training_params.tolist() == [[0.5]]
    for bad in ([0.0, 1.0, 9, "log"], [0.1, 1.0, 9, "cubic"], [0.1, 1.0, "9"]):
        with pytest.raises(ValueError, match=r"parameter_grid\['nu'\] must be \[low, high, count\] or"):
            GPTPINN(Burgers(), {"nu": bad}, **TINY)


def windowed_allen_cahn(**kw):
    from lightning_pde.nn import MLP, PeriodicEmbedding
    from lightning_pde.nn.time_windows import TimeWindows

    net = TimeWindows(MLP([8, 8], embedding=PeriodicEmbedding(["x"], harmonics=2)), n_windows=2)
    recipe = {"net": net, "loss_weights": {"initial": 100.0}, "precision": "float32", "max_steps": 20,
              "second_order": {"iterations": 100}, **kw.pop("neuron", {})}
    args = dict(problem=AllenCahn(), parameter_grid={"lam": [1e-4, 1e-3, 3], "eps": [1.0, 5.0, 3]}, max_neurons=2,
                **{**TINY, "neuron": recipe})
    args.update(kw)
    return GPTPINN(**args)


def test_time_window_neurons_march_window_by_window_and_reload(tmp_path, monkeypatch):
    """neuron.net=TimeWindows: window k is trained alone on points squeezed into its own time slab, window 1's
    initial condition is continuity with window 0 (at t = 0.5 it meets window 0, not the initial data), the bank holds the piecewise neurons' own values, and a checkpoint rebuilds the same neurons."""
    from lightning_pde.modules import PINN

    seen = []
    losses = PINN.condition_losses
    monkeypatch.setattr(PINN, "condition_losses", lambda self, points: seen.append(
        (self.net.active_window, float(points["pde"][:, 1].min()), float(points["pde"][:, 1].max()),
         float(points["initial"][:, 1].max()))) or losses(self, points))
    m = windowed_allen_cahn()
    params = torch.tensor([1e-3, 1.0], dtype=torch.float64)
    pinn = m.train_neuron(params)
    monkeypatch.setattr(PINN, "condition_losses", losses)
    for k, lower, upper in ((0, 0.0, 0.5), (1, 0.5, 1.0)):
        rows = [s for s in seen if s[0] == k]
        assert rows and all(lower - 1e-6 <= s[1] and s[2] <= upper + 1e-6 and abs(s[3] - lower) < 1e-6
                            for s in rows)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)  # window 0 first, then window 1
    net = pinn.net
    x = torch.linspace(-1, 1, 33, dtype=torch.float64)
    edge = torch.stack([x, torch.full_like(x, 0.5)], 1)
    sides = []
    for k in (0, 1):
        net.active_window = k
        sides.append(pinn(edge).flatten())
    net.active_window = None
    # window 1 starts from window 0's end state, not from the problem's initial data x^2 cos(pi x)
    jump = (sides[0] - sides[1]).abs().max()
    assert jump < 0.3 * (sides[1] - x ** 2 * torch.cos(math.pi * x)).abs().max()
    m = windowed_allen_cahn()
    m.add_neuron(m.train_neuron(params), params)
    torch.testing.assert_close(m.neuron_values(m.points_test), m.columns("test")["u"], rtol=0, atol=1e-12)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(m)
    trainer.save_checkpoint(tmp_path / "windowed.ckpt")
    loaded = lightning_pde.load(tmp_path / "windowed.ckpt")
    assert type(loaded.neurons[0].net).__name__ == "TimeWindows"
    torch.testing.assert_close(loaded.neuron_values(m.points_test), m.neuron_values(m.points_test), rtol=0, atol=0)


def test_neuron_recipe_bad_input():
    from lightning_pde.nn.time_windows import TimeWindows

    built = MLP([8]).build(2, 1)
    with pytest.raises(ValueError, match="neuron.net must be unbuilt"):
        windowed_allen_cahn(neuron={"net": built})
    with pytest.raises(ValueError, match=r"neuron.loss_weights has unknown condition\(s\) \['boundary'\]"):
        windowed_allen_cahn(neuron={"loss_weights": {"boundary": 10.0}})
    with pytest.raises(ValueError, match=r"neuron.match must be a non-empty list of names, got \[\]"):
        windowed_allen_cahn(neuron={"match": []})
    with pytest.raises(ValueError, match="needs the initial condition in the loss"):
        GPTPINN(Burgers(), {"nu": [0.05, 0.5, 3]}, **{**TINY, "neuron": neuron(net=TimeWindows(MLP([8])))})
    burgers = dict(problem=Burgers(), parameter_grid={"nu": [0.05, 0.5, 3]})
    cases = [({"max_steps": -1}, "GPTPINN: neuron.max_steps must be an integer >= 0, got -1"),
             ({"max_steps": 0}, "neuron.max_steps and neuron.second_order.iterations are both 0"),
             ({"lr": 0.0}, "GPTPINN: neuron.lr must be a finite number > 0, got 0.0"),
             ({"precision": "float16"}, "neuron.precision must be 'float64' or 'float32', got 'float16'"),
             ({"second_order": {"history_size": -3}},
              "GPTPINN: neuron.second_order.history_size must be an integer >= 1, got -3"),
             ({"second_order": {"line_search": "wolfe"}},
              r"neuron.second_order has unknown key\(s\) \['line_search'\]"),
             ({"second_order": {"optimizer": "LBFGS"}}, "neuron.second_order.optimizer must be an optimizer factory"),
             ({"hidden": [8]}, r"neuron has unknown key\(s\) \['hidden'\]")]
    for recipe, message in cases:
        with pytest.raises(ValueError, match=message):
            GPTPINN(**burgers, neuron=recipe)


def test_old_neuron_arguments_are_refused_naming_their_new_keys():
    with pytest.raises(ValueError, match=r"neuron_max_steps=30 -> neuron.max_steps; neuron_lbfgs_steps=5 -> "
                                         r"neuron.second_order.iterations"):
        GPTPINN(Burgers(), {"nu": [0.05, 0.5, 3]}, neuron_max_steps=30, neuron_lbfgs_steps=5)
    with pytest.raises(ValueError, match=r"hard_constraints=False -> neuron.hard_constraints"):
        GPTPINN(Burgers(), {"nu": [0.05, 0.5, 3]}, hard_constraints=False)
    with pytest.raises(ValueError, match=r"GPTPINN: unexpected argument\(s\) \['max_neuron'\]"):
        GPTPINN(Burgers(), {"nu": [0.05, 0.5, 3]}, max_neuron=3)


def test_neurons_train_through_the_optimization_path_with_any_second_order_optimizer(tmp_path):
    """The neuron's second-order phase is the OptimizationPath's: a factory (torch's L-BFGS without line search,
    tolerances 0, so it cannot stop early) replaces the default, its iteration budget is honoured exactly in steps of
    iterations_per_step (4 steps of 5, then one of 2), the counts are logged per neuron and saved, and the checkpoint
    reloads with no arguments, the factory included."""
    import functools

    from lightning_pde.callbacks.lbfgs import OptimizationPath

    factory = functools.partial(torch.optim.LBFGS, lr=0.1, history_size=7, tolerance_grad=0.0, tolerance_change=0.0)
    m = helmholtz(max_neurons=1, neuron=neuron(max_steps=3, second_order={
        "iterations": 22, "iterations_per_step": 5, "optimizer": factory}))
    steps, real = [], OptimizationPath.second_step_done
    OptimizationPath.second_step_done = lambda self, opt, *a: steps.append(opt.param_groups[0]["max_iter"]) or real(
        self, opt, *a)
    try:
        trainer = fit(m)
    finally:
        OptimizationPath.second_step_done = real
    assert steps == [5, 5, 5, 5, 2] and m.neuron_metrics[0]["iterations"] == 22
    assert m.neuron_metrics[0]["evaluations"] >= 22 and m.neuron_metrics[0]["seconds"] > 0
    assert trainer.callback_metrics["greedy/neuron_iterations"] == 22
    trainer.save_checkpoint(tmp_path / "factory.ckpt")
    loaded = GPTPINN.load_from_checkpoint(tmp_path / "factory.ckpt")
    assert loaded.neuron.second_order.optimizer.func is torch.optim.LBFGS
    assert loaded.neuron.second_order.optimizer.keywords == factory.keywords
    assert loaded.neuron_metrics == m.neuron_metrics
    torch.testing.assert_close(loaded.solve(m.first_params), m.solve(m.first_params))
