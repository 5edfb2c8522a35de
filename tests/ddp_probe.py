"""A callback for the DDP tests (imported by name in the spawned processes, with tests/ on PYTHONPATH)."""

from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback


class ShardDump(Callback):
    """Save each rank's collocation points and its place in the world to `directory`/rank<r>.pt at train start."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def on_train_start(self, trainer, pl_module):
        points = {k: v.detach().cpu() for k, v in trainer.datamodule.collocation_points.items()}
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        torch.save({"points": points, "global_rank": trainer.global_rank, "world_size": trainer.world_size,
                    "node_rank": trainer.node_rank, "num_nodes": trainer.num_nodes,
                    "environment": type(trainer.strategy.cluster_environment).__name__},
                   Path(self.directory) / f"rank{trainer.global_rank}.pt")


class FirstBatchDump(ShardDump):
    """Save each rank's first training batch (the rows the loss sees) to `directory`/rank<r>.pt."""

    def on_train_start(self, trainer, pl_module):
        pass

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 0:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            torch.save({"points": {k: v.detach().cpu() for k, v in batch.items()}},
                       Path(self.directory) / f"rank{trainer.global_rank}.pt")


class PoisonRank(Callback):
    """Make the PDE residual infinite on one rank from step `step` on."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            import dataclasses

            pde = pl_module.conditions["pde"]
            pl_module.conditions["pde"] = dataclasses.replace(pde, residual=lambda f: pde.residual(f) * float("inf"))


class ReplicaDump(Callback):
    """Save each rank's module state (parameters and buffers), its step and its L-BFGS progress to
    `directory`/rank<r>.pt when training ends, so that a test can check that the replicas stayed identical."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def on_train_end(self, trainer, pl_module):
        from lightning_pde.callbacks import AdamThenLBFGS

        lbfgs = [cb for cb in trainer.callbacks if isinstance(cb, AdamThenLBFGS)]
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        torch.save({"state": {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()},
                    "global_step": trainer.global_step, "world_size": trainer.world_size,
                    "optimizer": type(trainer.optimizers[0]).__name__ if trainer.optimizers else None,
                    "lbfgs_iterations": lbfgs[0].iterations if lbfgs else None},
                   Path(self.directory) / f"rank{trainer.global_rank}.pt")


def _paired_problem():
    import torch

    from lightning_pde.problems import Condition, PointData, Problem
    from lightning_pde.problems.domain import Box

    class PairedDataProblem(Problem):
        """Observations whose values are a known function of their points, v = x + 2 y, so any rank can check that
        every row it holds still pairs a point with its own value."""

        input_names = ("x", "y")
        grid_shape = (4, 4)

        def __init__(self, n_data: int = 101) -> None:
            self.n_data = n_data
            self.domain = Box([0.0, 0.0], [1.0, 1.0])

        def exact(self, x):
            return (x[:, 0] + 2 * x[:, 1])[:, None]

        def conditions(self):
            points = self.domain.sample(self.n_data, torch.Generator().manual_seed(7))
            return {"pde": Condition("pde", lambda n, g, m: self.domain.sample(n, g, m), lambda f: f.laplacian("u"), 32),
                    "data": PointData(points, self.exact(points), n_points=60)}

    return PairedDataProblem


PairedDataProblem = _paired_problem()
PairedDataProblem.__module__ = __name__
