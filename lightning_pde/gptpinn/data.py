"""The data module of the GPT-PINN greedy stage: the points live in the module's neuron bank, so an epoch is one
dummy batch (one greedy step: train a neuron, then select the next parameter)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader


class GreedySteps(pl.LightningDataModule):
    """One dummy batch per epoch for :class:`~lightning_pde.modules.GPTPINN` (takes no arguments)."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader([torch.zeros(1)], batch_size=1)
