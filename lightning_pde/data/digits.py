"""scikit-learn's 8 x 8 handwritten digits as images in [-1, 1], split by seed into train / val / test (docs/design.md,
"Field data")."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lightning_pde.data.mixture import SampleDataModule
from lightning_pde.validation import integer_at_least, positive_int

#: images in scikit-learn's copy of the UCI optical digits test set (``sklearn.datasets.load_digits``)
N_DIGITS = 1797


def load_digit_images() -> tuple[Tensor, Tensor]:
    """All 1797 digits in scikit-learn's order: images (1797, 1, 8, 8) float32, the 0..16 grey levels mapped
    linearly to [-1, 1], and labels (1797,) int64 in 0..9. Ships with scikit-learn: nothing is downloaded."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy((digits.images / 8.0 - 1.0).astype(np.float32)).unsqueeze(1)
    return images, torch.from_numpy(digits.target.astype(np.int64))


def split_permutation(seed: int) -> Tensor:
    """The fixed order (1797,) of the digits that :class:`DigitsImages` with this seed cuts into its splits."""
    return torch.randperm(N_DIGITS, generator=torch.Generator().manual_seed(seed))


class DigitsImages(SampleDataModule):
    """The 1797 8 x 8 handwritten digits scikit-learn ships (``sklearn.datasets.load_digits``), as images
    (N, 1, 8, 8) float32 in [-1, 1] (grey level g in 0..16 becomes g / 8 - 1). One permutation drawn from `seed`
    orders them; the first `n_train` are the training set, the next `n_val` the validation set and the next `n_test`
    the test set, so the three are disjoint and the same for the same seed. The labels (0..9) of each split are
    ``train_labels``, ``val_labels`` and ``test_labels``, for the classifier behind
    :class:`~lightning_pde.metrics.FrechetDistance`. The images satisfy no PDE (``pde = None``).

    Args:
        n_train: training images.
        n_val: validation images (the reference distribution in validation).
        n_test: test images, held out from training and validation (the benchmark's reference).
        batch_size: images per training batch.
        seed: seed of the permutation that splits the images.
    """

    data_shape = (1, 8, 8)
    pde = None  # the images satisfy no PDE: no FieldResidual is attached

    def __init__(self, n_train: int = 1197, n_val: int = 300, n_test: int = 300, batch_size: int = 64,
                 seed: int = 0) -> None:
        super().__init__(n_train=n_train, n_val=n_val, batch_size=batch_size, seed=seed)
        self.n_test = positive_int("DigitsImages", "n_test", n_test)
        total = self.n_train + self.n_val + self.n_test
        if total > N_DIGITS:
            raise ValueError(f"DigitsImages: n_train + n_val + n_test must be at most the {N_DIGITS} digits "
                             f"scikit-learn ships, got {self.n_train} + {self.n_val} + {self.n_test} = {total}")
        if self.batch_size > self.n_train:
            raise ValueError(f"DigitsImages: batch_size must be at most n_train = {self.n_train} (the last "
                             f"incomplete batch is dropped, so no batch would be left), got {batch_size!r}")
        self.test: Tensor | None = None
        self.train_labels: Tensor | None = None
        self.val_labels: Tensor | None = None
        self.test_labels: Tensor | None = None

    def generate(self, n: int, seed: int) -> Tensor:
        """`n` distinct digits (n, 1, 8, 8), the first `n` of the permutation drawn from `seed`; with this module's
        seed and `n_train` they are its training set."""
        n = integer_at_least("DigitsImages", "n", n, 1)
        seed = integer_at_least("DigitsImages", "seed", seed, 0)
        if n > N_DIGITS:
            raise ValueError(f"DigitsImages: n must be at most the {N_DIGITS} digits scikit-learn ships, got {n}")
        images, _ = load_digit_images()
        return images[split_permutation(seed)[:n]]

    def setup(self, stage: str | None = None) -> None:
        if self.train is not None:
            return
        images, labels = load_digit_images()
        order = split_permutation(self.seed)
        ends = np.cumsum([self.n_train, self.n_val, self.n_test])
        train, val, test = order[:ends[0]], order[ends[0]:ends[1]], order[ends[1]:ends[2]]
        self.train, self.val, self.test = images[train], images[val], images[test]
        self.train_labels, self.val_labels, self.test_labels = labels[train], labels[val], labels[test]
