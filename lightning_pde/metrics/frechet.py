"""Fréchet distance between Gaussian fits of two image sets' classifier features (the FID recipe of Heusel et al.
2017, arXiv 1706.08500), with a small CNN trained on scikit-learn's 8 x 8 digits as the feature map."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lightning_pde.reference.cache import cached_array
from lightning_pde.validation import integer_at_least, positive_int

#: the training recipe of :func:`trained_digits_classifier`; part of the cache key, so changing it retrains
TRAINING = {"steps": 400, "batch_size": 128, "lr": 3e-3, "width": 16, "feature_dim": 32, "version": 1}


class DigitsClassifier(nn.Module):
    """A small CNN for (B, 1, 8, 8) digit images in [-1, 1]: two 3 x 3 convolutions (`width`, 2 `width` channels,
    ReLU), 2 x 2 max-pooling to 4 x 4, a ReLU layer of `feature_dim` units (the features :class:`FrechetDistance`
    compares) and a linear layer to the 10 class logits.

    Args:
        width: channels of the first convolution (twice that in the second).
        feature_dim: width of the penultimate layer.
    """

    def __init__(self, width: int = 16, feature_dim: int = 32) -> None:
        super().__init__()
        w = positive_int("DigitsClassifier", "width", width)
        self.feature_dim = positive_int("DigitsClassifier", "feature_dim", feature_dim)
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * w * 16, self.feature_dim), nn.ReLU())
        self.head = nn.Linear(self.feature_dim, 10)

    def features(self, images: Tensor) -> Tensor:
        """Penultimate activations (B, feature_dim) of images (B, 1, 8, 8)."""
        if images.ndim != 4 or tuple(images.shape[1:]) != (1, 8, 8):
            raise ValueError(f"DigitsClassifier: images must be (B, 1, 8, 8), got {tuple(images.shape)}")
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        """Class logits (B, 10) of images (B, 1, 8, 8)."""
        return self.head(self.features(images))

    @torch.no_grad()
    def accuracy(self, images: Tensor, labels: Tensor) -> float:
        """Fraction of images (B, 1, 8, 8) whose most likely class is their label (B,)."""
        return float((self(images).argmax(1) == labels).float().mean())


def _train_classifier(seed: int) -> dict[str, np.ndarray]:
    """Train a :class:`DigitsClassifier` by the :data:`TRAINING` recipe (Adam on cross-entropy, minibatches drawn
    with replacement) on the training split of ``DigitsImages(seed=seed)``, on one thread so that the weights do not
    depend on the machine's core count; returns its state_dict as numpy arrays."""
    from lightning_pde.data.digits import DigitsImages

    data = DigitsImages(seed=seed)
    data.setup()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DigitsClassifier(TRAINING["width"], TRAINING["feature_dim"])
        optimizer = torch.optim.Adam(model.parameters(), lr=TRAINING["lr"])
        for _ in range(TRAINING["steps"]):
            pick = torch.randint(len(data.train), (TRAINING["batch_size"],), generator=generator)
            loss = nn.functional.cross_entropy(model(data.train[pick]), data.train_labels[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return {name: value.detach().numpy().copy() for name, value in model.state_dict().items()}


def trained_digits_classifier(seed: int = 0) -> DigitsClassifier:
    """A :class:`DigitsClassifier` trained (a few seconds, deterministically) on the training split of
    ``DigitsImages(seed=seed)``, in eval mode with gradients off. The weights are cached on disk
    (:func:`~lightning_pde.reference.cache.cached_array`, keyed by `seed` and the :data:`TRAINING` recipe), so later
    calls load them. Score it on the same module's ``val`` or ``test`` split: the others were trained on."""
    seed = integer_at_least("trained_digits_classifier", "seed", seed, 0)
    weights = cached_array("digits_classifier", {"seed": seed, **TRAINING}, lambda: _train_classifier(seed))
    model = DigitsClassifier(TRAINING["width"], TRAINING["feature_dim"])
    model.load_state_dict({name: torch.from_numpy(value) for name, value in weights.items()})
    return model.eval().requires_grad_(False)


def _feature_matrix(name: str, features: Any) -> np.ndarray:
    if torch.is_tensor(features):
        features = features.detach().cpu().double().numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"frechet_distance: {name} must be (N, d) with N >= 2 samples, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"frechet_distance: {name} must be finite")
    return array


def frechet_distance(features_a: Tensor | np.ndarray, features_b: Tensor | np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance squared between the Gaussian fits N(mu_a, S_a), N(mu_b, S_b) of two feature
    sets (N_a, d) and (N_b, d): ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (arXiv 1706.08500),
    with unbiased sample covariances, in float64. The matrix square root is scipy's; its imaginary round-off is
    dropped and a round-off negative total is returned as 0."""
    a, b = _feature_matrix("features_a", features_a), _feature_matrix("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: features_a and features_b must have the same dimension d, got "
                         f"{a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # ReLU features that never fire make S_a S_b singular; its square root is still well defined (the zero
        # eigenvalues stay zero), so scipy's "matrix is singular" warning is no news
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(s_a @ s_b)
        if not np.all(np.isfinite(root)):
            # the Schur method broke down: shift both covariances by a tiny multiple of the identity
            shift = 1e-10 * max(np.trace(s_a), np.trace(s_b), 1e-300) * np.eye(len(s_a))
            root = scipy.linalg.sqrtm((s_a + shift) @ (s_b + shift))
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root).real)
    return max(value, 0.0)


class FrechetDistance(Metric):
    """Fréchet distance between the classifier features of generated images and reference images
    (:func:`frechet_distance`; the FID recipe with a digits CNN in place of Inception). Accumulates both sets over
    batches (the sets may differ in size) and synchronises across DDP ranks.

    Args:
        classifier: the feature map: a module with ``features(images) -> (B, d)``; default
            :func:`trained_digits_classifier` (seed 0) for (B, 1, 8, 8) digits in [-1, 1].
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, classifier: nn.Module | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        classifier = trained_digits_classifier() if classifier is None else classifier
        if not callable(getattr(classifier, "features", None)):
            raise ValueError(f"FrechetDistance: classifier must have a features(images) method, such as "
                             f"DigitsClassifier, got {type(classifier).__name__}")
        self.classifier = classifier.eval().requires_grad_(False)
        self.add_state("samples", default=[], dist_reduce_fx="cat")
        self.add_state("reference", default=[], dist_reduce_fx="cat")

    def update(self, samples: Tensor, reference: Tensor) -> None:
        """Images `samples` (N, ...) and `reference` (M, ...) of the classifier's input shape."""
        with torch.no_grad():
            self.samples.append(self.classifier.features(samples.detach()).double())
            self.reference.append(self.classifier.features(reference.detach()).double())

    def compute(self) -> Tensor:
        x, y = dim_zero_cat(self.samples), dim_zero_cat(self.reference)
        return torch.tensor(frechet_distance(x, y), dtype=torch.float64, device=x.device)
