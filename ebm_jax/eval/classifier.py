"""The fixed feature classifiers that sample-quality scores use (as FID uses Inception).

`FeatureClassifier`, a small CNN on `[B, 28, 28, 1]` images in [-1, 1]:

    conv 3x3, 32, stride 1 -> swish -> conv 3x3, 64, stride 2 -> swish -> conv 3x3, 64, stride 2
    -> swish -> conv 3x3, 64, stride 2 -> swish -> flatten (4 x 4 x 64) -> dense 128 -> swish
    = the features [B, 128] -> dense 10 = the class logits

One set of weights per dataset ships with the package (`ebm_jax/eval/weights/<dataset>.npz`,
made by `experiments/train_feature_classifier.py`; architecture, data, seed and test accuracy
are stored with the weights and returned by `load`). `features(images, dataset)` gives the
128-D features and the class probabilities that `sample_quality` scores.
"""

import functools
import os
from typing import Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax import pretrained
from ebm_jax.data.batching import padded_batches

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
DATASETS = ("mnist", "fashion_mnist")


class FeatureClassifier(nn.Module):
    """`apply(variables, x [B, 28, 28, 1]) -> (features [B, 128], logits [B, 10])`."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x):
        for features, stride in ((32, 1), (64, 2), (64, 2), (64, 2)):
            x = nn.swish(nn.Conv(features, (3, 3), strides=(stride, stride), padding="SAME")(x))
        features = nn.swish(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return features, nn.Dense(self.num_classes)(features)


def weights_path(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"no feature classifier for {dataset!r}; there is one for {DATASETS}")
    return os.path.join(WEIGHTS_DIR, f"{dataset}.npz")


def save(path: str, variables, info: Dict) -> None:
    """Writes the variables and `info` (architecture, data, seed, accuracy) to one .npz file."""
    pretrained.save_npz(path, variables, info)


def load(dataset: str = "mnist") -> Tuple[FeatureClassifier, Dict, Dict]:
    """`(model, variables, info)` of the shipped classifier for `dataset`."""
    path = weights_path(dataset)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run experiments/train_feature_classifier.py --dataset {dataset}")
    variables, info = pretrained.read_npz(path)
    return FeatureClassifier(), variables, info


def features(images: np.ndarray, dataset: str = "mnist", batch_size: int = 500) -> Tuple[np.ndarray, np.ndarray]:
    """`(features [N, 128], class probabilities [N, 10])` of `images [N, 28, 28, 1]` in [-1, 1]
    under the shipped classifier for `dataset`."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"images must be [N, 28, 28, 1] in [-1, 1], got shape {images.shape}")
    fn = _feature_fn(dataset)
    feats, probs = [], []
    for batch, valid in padded_batches(images, batch_size):
        f, p = fn(jnp.asarray(batch))
        feats.append(np.asarray(f)[valid])
        probs.append(np.asarray(p)[valid])
    return np.concatenate(feats), np.concatenate(probs)


@functools.lru_cache(maxsize=None)
def _feature_fn(dataset: str):
    """The jitted `x -> (features, probabilities)` of a dataset's classifier, loaded and compiled
    once per process."""
    model, variables, _ = load(dataset)

    def fn(x):
        feats, logits = model.apply(variables, x)
        return feats, jax.nn.softmax(logits)

    return jax.jit(fn)
