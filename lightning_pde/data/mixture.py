"""Sample data sets for diffusion models and their distillation: the 2-D Gaussian mixture (docs/design.md)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lightning_pde.validation import integer_at_least, positive_int


class SampleDataModule(pl.LightningDataModule):
    """Base class: fixed train and validation sets of samples, mini-batched (Lightning shards them under DDP).

    Subclasses implement :meth:`generate` and set ``data_shape``. A data-free PID student only uses the batches
    as a step counter and the validation set as the reference distribution.

    Args:
        n_train: training samples.
        n_val: validation samples (the reference for sliced Wasserstein distance / moments).
        batch_size: samples per training batch.
        seed: seed of the generated samples (validation uses seed + 1).
    """

    data_shape: tuple[int, ...] = ()

    def __init__(self, n_train: int = 10000, n_val: int = 2000, batch_size: int = 256, seed: int = 0) -> None:
        super().__init__()
        owner = type(self).__name__
        self.n_train = positive_int(owner, "n_train", n_train)
        self.n_val = positive_int(owner, "n_val", n_val)
        self.batch_size = positive_int(owner, "batch_size", batch_size)
        self.seed = integer_at_least(owner, "seed", seed, 0)
        self.train: Tensor | None = None
        self.val: Tensor | None = None

    def generate(self, n: int, seed: int) -> Tensor:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train is None:
            self.train = self.generate(self.n_train, self.seed)
            self.val = self.generate(self.n_val, self.seed + 1)

    def normalization(self) -> tuple[Tensor, Tensor]:
        """Per-channel (vectors: per-coordinate) mean and standard deviation of the training set, shaped to
        broadcast against one sample."""
        self.setup()
        dims = [0] + list(range(2, self.train.ndim))
        mean, std = self.train.mean(dims, keepdim=True)[0], self.train.std(dims, keepdim=True)[0]
        return mean, std

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.train), batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.val), batch_size=self.n_val)


class GaussianMixture2D(SampleDataModule, ):
    """8 equal-weight isotropic Gaussians with means 2 (cos 2 pi k / 8, sin 2 pi k / 8) and standard deviation 0.1
    (docs/design.md). Samples are (N, 2). Arguments as in :class:`SampleDataModule`."""

    data_shape = (2,)

    def generate(self, n: int, seed: int) -> Tensor:
        from lightning_pde.diffusion import GaussianMixtureDenoiser

        return GaussianMixtureDenoiser().sample_data(n, torch.Generator().manual_seed(seed))
