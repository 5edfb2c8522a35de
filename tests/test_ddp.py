"""Lightning's DDP strategy on CPU (gloo): two real processes, launched by Lightning and by torchrun as two nodes.
Each rank's collocation points are a disjoint shard, and together they are the single-process point set."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lightning_pde
from lightning_pde.data import CollocationDataModule
from lightning_pde.problems import Burgers

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "ddp" / "burgers.yaml")
TINY = ["--model.init_args.problem.init_args.n_pde=301", "--model.init_args.problem.init_args.n_initial=40",
        "--model.init_args.problem.init_args.n_boundary=40", "--model.init_args.net.init_args.hidden=[8]",
        "--data.init_args.steps_per_epoch=3", "--trainer.max_steps=6", "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false", "--trainer.check_val_every_n_epoch=1",
        "--trainer.limit_val_batches=1"]


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}


def probe(directory):
    return ["--trainer.callbacks+=ddp_probe.ShardDump", f"--trainer.callbacks.directory={directory}"]


def single_process_points():
    data = CollocationDataModule(sampling="sobol", seed=0, problem=Burgers(n_pde=301, n_initial=40, n_boundary=40))
    data.setup("fit")
    return data.sample(0)


def assert_disjoint_shards_of_the_single_process_set(directory, world_size):
    shards = [torch.load(Path(directory) / f"rank{r}.pt", weights_only=True) for r in range(world_size)]
    assert [s["global_rank"] for s in shards] == list(range(world_size))
    assert all(s["world_size"] == world_size for s in shards)
    full = single_process_points()
    for name in shards[0]["points"]:  # hard constraints leave only "pde"
        parts = [s["points"][name] for s in shards]
        rows = [{tuple(p.tolist()) for p in part} for part in parts]
        assert all(len(r) == len(part) for r, part in zip(rows, parts))
        for i in range(world_size):
            for j in range(i + 1, world_size):
                assert not rows[i] & rows[j], f"ranks {i} and {j} share {name} points"
        assert set().union(*rows) == {tuple(p.tolist()) for p in full[name]}, name
    return shards


def test_lightning_ddp_two_processes_shard_points_and_checkpoint(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lightning_pde", "fit", "--config", CONFIG, *TINY,
                             "--trainer.devices=2", "--trainer.callbacks.dirpath=" + str(tmp_path / "ckpt"),
                             *probe(tmp_path / "shards")],
                            capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    assert_disjoint_shards_of_the_single_process_set(tmp_path / "shards", 2)
    module = lightning_pde.load(tmp_path / "ckpt" / "last.ckpt")
    assert module.problem.name == "Burgers" and module.hard_constraints


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_nodes_one_process_each(tmp_path):
    """`torchrun` as on a 2-node cluster (both "nodes" on this machine): Lightning picks up the torchelastic
    environment, num_nodes=2 x devices=1 makes a world of 2."""
    port = str(free_port())
    commands = [[sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={node}",
                 "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
                 "-m", "lightning_pde", "fit", "--config", CONFIG, *TINY, "--trainer.devices=1",
                 "--trainer.num_nodes=2", "--trainer.callbacks.dirpath=" + str(tmp_path / "ckpt"),
                 *probe(tmp_path / "shards")] for node in (0, 1)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                              env=env()) for c in commands]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    shards = assert_disjoint_shards_of_the_single_process_set(tmp_path / "shards", 2)
    assert [s["node_rank"] for s in shards] == [0, 1] and {s["num_nodes"] for s in shards} == {2}
    assert {s["environment"] for s in shards} == {"TorchElasticEnvironment"}
    assert lightning_pde.load(tmp_path / "ckpt" / "last.ckpt").problem.name == "Burgers"


def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    """Rank 1 alone gets an infinite PDE residual at step 3; both ranks must stop with the message (no hang)."""
    result = subprocess.run([sys.executable, "-m", "lightning_pde", "fit", "--config", CONFIG, *TINY,
                             "--trainer.devices=2", "--trainer.callbacks+=ddp_probe.PoisonRank",
                             "--trainer.callbacks.rank=1", "--trainer.callbacks.step=3"],
                            capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    # Both ranks report it themselves; without the cross-rank check rank 0 dies in gloo ("Connection closed by
    # peer") or, with NCCL, waits in the all-reduce until the timeout.
    assert result.stderr.count("lpde: error: PINN: non-finite loss term at step 3: pde=inf") == 2, result.stderr[-3000:]
    assert "Connection closed" not in result.stderr


# -- each shipped config family under DDP x2, with the config's own callbacks ------------------------------------------
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
FAMILIES = {
    # AdamThenLBFGS (its switch at step 2000, moved inside the run by max_steps: 28 Adam steps, then 2 L-BFGS steps of
    # 50 iterations), ModelCheckpoint and SolutionPlot, which draws when fit ends
    "pinn/burgers": [
        "--model.init_args.problem.init_args.n_pde=301", "--model.init_args.problem.init_args.n_initial=40",
        "--model.init_args.problem.init_args.n_boundary=40", "--model.init_args.net.init_args.hidden=[8,8]",
        "--data.init_args.steps_per_epoch=10", "--trainer.max_steps=30", "--trainer.check_val_every_n_epoch=1",
        "--trainer.limit_val_batches=1"],
    # the greedy stage trains each neuron on every rank and shards the candidates; GreedyBasisSelection, ModelCheckpoint
    "gptpinn/burgers": ["--model.max_neurons=2", "--model.neuron.max_steps=10", "--model.neuron.second_order.iterations=5",
                        "--model.pde_grid=[10,10]", "--model.neuron.pde_grid=[10,10]", "--model.test_grid=[8,8]",
                        "--model.neuron.net.init_args.hidden=[8]", "--model.n_condition_points=16",
                        "--model.first_params=null", "--model.parameter_grid={nu: [0.05, 0.5, 5]}"],
    # PIDSamplePlot draws when fit ends; ModelCheckpoint
    "pid/mixture_pid": ["--model.init_args.backbone.init_args.hidden=[16]", "--model.init_args.batch_size=32",
                        "--data.init_args.n_train=320", "--data.init_args.n_val=64", "--data.init_args.batch_size=32",
                        "--trainer.max_steps=6", "--trainer.val_check_interval=3", "--model.init_args.n_grid=8"],
    # the paper's full method: TT + Stein + DiffQuant + SMX-quantized layers
    "quant/poisson2d_tt_se_smx": [
        "--model.init_args.problem.init_args.n_pde=16", "--model.init_args.problem.init_args.n_boundary=8",
        "--model.init_args.net.init_args.hidden=[16,16,16]",
        "--model.init_args.net.init_args.tt_shapes="
        "[[[1,1,1,2],[2,2,2,2]],[[2,2,2,2],[2,2,2,2]],[[2,2,2,2],[2,2,2,2]],[]]",
        "--model.init_args.derivatives.init_args.samples=4", "--data.init_args.steps_per_epoch=3",
        "--trainer.max_steps=6", "--trainer.check_val_every_n_epoch=1", "--trainer.limit_val_batches=1"],
}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_config_family_finishes_under_ddp_with_identical_replicas(family, tmp_path):
    """Two gloo processes run a shipped config with its own callbacks to the end (plots drawn when fit ends
    included: a rank-zero callback that asks for a collective hangs there), and the two replicas end identical."""
    result = subprocess.run([sys.executable, "-m", "lightning_pde", "fit", "--config",
                             str(ROOT / "configs" / f"{family}.yaml"), *FAMILIES[family], *QUIET,
                             "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
                             f"--trainer.default_root_dir={tmp_path / 'runs'}",
                             "--trainer.callbacks+=ddp_probe.ReplicaDump",
                             f"--trainer.callbacks.directory={tmp_path / 'replicas'}"],
                            capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    ranks = [torch.load(tmp_path / "replicas" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2 and ranks[0]["global_step"] == ranks[1]["global_step"]
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), f"{family}: the replicas differ in {name}"
    if family == "pinn/burgers":  # --trainer.max_steps=30 wins over the callback's schedule, and L-BFGS ran inside it
        assert ranks[0]["global_step"] == 30 and ranks[0]["optimizer"] == "DistributedLBFGS"
        assert ranks[0]["lbfgs_iterations"] == ranks[1]["lbfgs_iterations"] > 0
        assert "max_steps=30 is shorter than the schedule" in result.stderr + result.stdout
    pictures = {"pinn/burgers": "solution.png", "pid/mixture_pid": "samples.png"}
    if family in pictures:
        assert list((tmp_path / "runs").rglob(pictures[family])), f"{family}: no {pictures[family]} was drawn"


def test_observations_stay_paired_with_their_points_across_two_ranks(tmp_path):
    """A PointData condition under DDP x2: each rank holds a disjoint half of the sampled observations, and every row
    still carries its own point's value (v = x + 2 y), so sharding never separates a point from its target."""
    config = tmp_path / "paired.yaml"
    config.write_text("model:\n  class_path: lightning_pde.modules.PINN\n  init_args:\n"
                      "    problem: {class_path: ddp_probe.PairedDataProblem}\n"
                      "    net: {class_path: lightning_pde.nn.MLP, init_args: {hidden: [8]}}\n"
                      "data:\n  class_path: lightning_pde.data.CollocationDataModule\n"
                      "  init_args: {steps_per_epoch: 2, sampling: uniform}\n"
                      "trainer: {max_steps: 2, enable_progress_bar: false, limit_val_batches: 0}\n")
    result = subprocess.run([sys.executable, "-m", "lightning_pde", "fit", "--config", str(config),
                             "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
                             f"--trainer.default_root_dir={tmp_path / 'runs'}", "--trainer.callbacks+=ddp_probe.FirstBatchDump",
                             f"--trainer.callbacks.directory={tmp_path / 'shards'}"],
                            capture_output=True, text=True, cwd=tmp_path, env=env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    shards = [torch.load(tmp_path / "shards" / f"rank{r}.pt", weights_only=True)["points"]["data"] for r in (0, 1)]
    assert [len(s) for s in shards] == [30, 30]
    for rows in shards:
        assert rows.shape[1] == 3
        torch.testing.assert_close(rows[:, 2], rows[:, 0] + 2 * rows[:, 1])  # float32 on the ranks
    assert not {tuple(r) for r in shards[0].tolist()} & {tuple(r) for r in shards[1].tolist()}
