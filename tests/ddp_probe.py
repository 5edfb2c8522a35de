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
