"""The shipped feature classifiers load and do what their stored accuracy says."""

import os

import numpy as np
import pytest

from ebm_jax.data import load, to_float_images
from ebm_jax.eval import classifier, sample_quality

FASHION = os.path.join(os.path.dirname(__file__), "..", "fixtures", "fashion_mnist")


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_shipped_classifier_classifies_the_fixture(dataset, mnist_tiny_dir):
    """On the fixture's 100 test images (real, from the official test splits), accuracy is at
    least the stored test accuracy minus 4 binomial standard errors."""
    data = load(dataset, mnist_tiny_dir if dataset == "mnist" else FASHION)
    images = to_float_images(data.test.images)
    feats, probs = classifier.features(images, dataset, batch_size=64)
    assert feats.shape == (100, 128) and probs.shape == (100, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    _, _, info = classifier.load(dataset)
    assert info["dataset"] == dataset and info["test_images"] == 10000 and "architecture" in info
    accuracy = np.mean(probs.argmax(1) == data.test.labels)
    p = info["test_accuracy"]
    assert accuracy >= p - 4 * np.sqrt(p * (1 - p) / 100)


def test_image_scores_floor_below_ceiling(mnist_tiny_dir):
    data = load("mnist", mnist_tiny_dir)
    train, test = to_float_images(data.train.images), to_float_images(data.test.images)
    noise = np.random.default_rng(0).uniform(-1, 1, train.shape).astype(np.float32)
    scores = sample_quality.image_scores(test, {"train": train, "noise": noise}, "mnist", block_size=50)
    assert scores["train"]["frechet_distance"] < scores["noise"]["frechet_distance"]
    assert scores["train"]["kid"] < scores["noise"]["kid"]
    assert scores["train"]["classifier_score"] > scores["noise"]["classifier_score"]


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="no feature classifier"):
        classifier.load("cifar10")
