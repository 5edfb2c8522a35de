"""scikit-learn's 8 x 8 digits as a data module, the digits classifier and the Fréchet distance on its features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_pde.data import DigitsImages
from lightning_pde.data.digits import N_DIGITS, load_digit_images, split_permutation
from lightning_pde.metrics import FrechetDistance
from lightning_pde.metrics import frechet
from lightning_pde.metrics.frechet import frechet_distance, trained_digits_classifier


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_DIR", str(tmp_path))


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory):
    """A cache directory holding the classifier of seed 0, trained once for this module."""
    directory = tmp_path_factory.mktemp("classifier_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LPDE_CACHE_DIR", str(directory))
        trained_digits_classifier(seed=0)
    return directory


@pytest.fixture()
def classifier(classifier_cache, monkeypatch):
    monkeypatch.setenv("LPDE_CACHE_DIR", str(classifier_cache))
    return trained_digits_classifier(seed=0)


@pytest.fixture(scope="module")
def digits() -> DigitsImages:
    data = DigitsImages()
    data.setup()
    return data


def test_splits_are_disjoint_deterministic_and_in_range(digits):
    again = DigitsImages()
    again.setup()
    for split in ("train", "val", "test", "train_labels", "val_labels", "test_labels"):
        assert torch.equal(getattr(digits, split), getattr(again, split))
    assert digits.train.shape == (1197, 1, 8, 8) and digits.val.shape == digits.test.shape == (300, 1, 8, 8)
    assert digits.train.dtype == torch.float32 and digits.train.min() == -1 and digits.train.max() == 1
    # the three splits are consecutive pieces of one permutation of all the digits, so no image is in two of them
    order = split_permutation(0)
    assert torch.equal(order.sort().values, torch.arange(N_DIGITS))
    images, labels = load_digit_images()
    assert torch.equal(torch.cat([digits.train, digits.val, digits.test]), images[order[:1797]])
    assert torch.equal(torch.cat([digits.train_labels, digits.val_labels, digits.test_labels]), labels[order])
    assert torch.equal(digits.generate(1197, 0), digits.train)
    other = DigitsImages(seed=1)
    other.setup()
    assert not torch.equal(other.train, digits.train)
    mean, std = digits.normalization()
    assert mean.shape == std.shape == (1, 1, 1) and -1 < float(mean) < 0 < float(std) < 1
    assert DigitsImages.pde is None and DigitsImages.data_shape == (1, 8, 8)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_train": 1500}, r"n_train \+ n_val \+ n_test must be at most the 1797 digits .* 1500 \+ 300 \+ 300 = 2100"),
    ({"n_test": 0}, "n_test must be an integer >= 1, got 0"),
    ({"n_val": 2.5}, "n_val must be an integer >= 1, got 2.5"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"n_train": 10, "batch_size": 64}, "batch_size must be at most n_train = 10"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=f"DigitsImages: {message}"):
        DigitsImages(**kwargs)


def test_generate_rejects_more_images_than_there_are():
    with pytest.raises(ValueError, match="DigitsImages: n must be at most the 1797 digits .* got 1798"):
        DigitsImages().generate(1798, 0)


def test_classifier_is_accurate_and_cached(classifier, classifier_cache, digits, monkeypatch):
    assert not classifier.training
    assert classifier.accuracy(digits.test, digits.test_labels) >= 0.9
    assert len(list(classifier_cache.glob("digits_classifier-*.npz"))) == 1

    def no_training(seed):
        raise AssertionError("the cached classifier was trained again")

    monkeypatch.setattr(frechet, "_train_classifier", no_training)
    loaded = trained_digits_classifier(seed=0)
    for (name, value), other in zip(classifier.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(value, other), name


def _exact_moments(mean: np.ndarray, covariance: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples (n, d) whose sample mean and unbiased sample covariance are exactly `mean` and `covariance`."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # now cov(z) = I
    return mean + z @ np.linalg.cholesky(covariance).T


@pytest.mark.parametrize("rotate", [False, True])
def test_frechet_distance_matches_the_closed_form_for_commuting_covariances(rotate):
    """For S_1 = Q diag(s_1) Q^T and S_2 = Q diag(s_2) Q^T the distance is
    ||m_1 - m_2||^2 + sum (sqrt s_1 - sqrt s_2)^2."""
    rng = np.random.default_rng(0)
    d = 5
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    q = np.linalg.qr(rng.normal(size=(d, d)))[0] if rotate else np.eye(d)
    a = _exact_moments(m1, q @ np.diag(s1) @ q.T, 400, rng)
    b = _exact_moments(m2, q @ np.diag(s2) @ q.T, 300, rng)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(torch.from_numpy(b), torch.from_numpy(a)) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a[:, :1], b[:, :1]) == pytest.approx(  # d = 1 is not special
        (a[:, 0].mean() - b[:, 0].mean()) ** 2 + (a[:, 0].std(ddof=1) - b[:, 0].std(ddof=1)) ** 2, rel=1e-9)


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="frechet_distance: features_a and features_b must have the same dimension"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"frechet_distance: features_b must be \(N, d\) with N >= 2"):
        frechet_distance(np.zeros((4, 3)), np.zeros((1, 3)))


def test_frechet_distance_of_classifier_features(classifier, digits):
    half, rest = digits.test[:150], digits.test[150:]
    noise = torch.rand(150, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    metric = FrechetDistance(classifier)
    assert metric(digits.test, digits.test) == pytest.approx(0.0, abs=1e-6)
    metric.reset()
    metric.update(half[:70], rest[:100])  # accumulated over batches of any sizes
    metric.update(half[70:], rest[100:])
    real = float(metric.compute())
    features = classifier.features
    assert real == pytest.approx(frechet_distance(features(half), features(rest)), rel=1e-12)
    assert frechet_distance(features(rest), features(half)) == pytest.approx(real, rel=1e-6)
    assert frechet_distance(features(noise), features(rest)) > 5 * real
    with pytest.raises(ValueError, match="FrechetDistance: classifier must have a features"):
        FrechetDistance(torch.nn.Linear(2, 2))
