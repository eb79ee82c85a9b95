"""Sample-quality scores on features: Frechet distance, KID, and the Inception-Score analogue.

    frechet_distance(features_a, features_b)    |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)
                                                (Heusel et al. 2017, "FID" on Inception features)
    kernel_inception_distance(a, b, ...)        unbiased MMD^2 with the cubic polynomial kernel
                                                k(x, y) = (x.y / D + 1)^3 (Binkowski et al. 2018),
                                                averaged over disjoint blocks, with its standard error
    classifier_score(probs)                     exp(E_x KL(p(y | x) || p(y))), the Inception Score's
                                                form on any classifier's class probabilities

Features are `[N, D]` arrays (numpy or JAX); the scores are computed on the host in float64 and
returned as Python floats. Which network gives the features is the caller's choice; the scores
of two sets are only comparable on the same features. `image_scores` scores sets of 28 x 28
images against reference images on the shipped classifier of a dataset (`eval.classifier`).
"""

from typing import Dict, Tuple

import numpy as np


def _features(x, name) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be [N, D] with N >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has non-finite values")
    return x


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues below
    0 from rounding set to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance_from_moments(mean_a, cov_a, mean_b, cov_b) -> float:
    """The Frechet (2-Wasserstein) distance squared between N(mean_a, cov_a) and N(mean_b, cov_b)."""
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    root_a = _sqrt_psd(cov_a)
    cross = _sqrt_psd(root_a @ cov_b @ root_a)
    return float(np.sum(np.square(mean_a - mean_b)) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(cross))


def frechet_distance(features_a, features_b) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets `[N_a, D]`, `[N_b, D]`
    (sample means and unbiased covariances)."""
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    return frechet_distance_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _mmd2_unbiased(a, b) -> float:
    d = a.shape[1]
    k_aa, k_bb, k_ab = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
    m, n = len(a), len(b)
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
                 - 2 * k_ab.mean())


def kernel_inception_distance(features_a, features_b, block_size: int = 1000, seed: int = 0) -> Tuple[float, float]:
    """`(KID, standard error)`: the unbiased MMD^2 of the cubic polynomial kernel on each of
    k = min(N_a, N_b) // block_size disjoint pairs of blocks (both sets shuffled with `seed`),
    their mean and sd / sqrt(k) (k >= 2 needed; smaller sets use two blocks of half their size).
    Two samples of one distribution give KID within a few standard errors of 0."""
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    rng = np.random.default_rng(seed)
    a, b = a[rng.permutation(len(a))], b[rng.permutation(len(b))]
    size = min(int(block_size), min(len(a), len(b)) // 2)
    if size < 2:
        raise ValueError(f"KID needs at least 4 examples per set, got {len(a)} and {len(b)}")
    blocks = min(len(a), len(b)) // size
    estimates = np.array([_mmd2_unbiased(a[i * size:(i + 1) * size], b[i * size:(i + 1) * size]) for i in range(blocks)])
    return float(estimates.mean()), float(estimates.std(ddof=1) / np.sqrt(blocks))


def classifier_score(probs, eps: float = 1e-12) -> float:
    """exp(mean_x KL(p(y | x) || p(y))) for class probabilities `[N, K]` (rows summing to 1), with
    p(y) their mean: 1 when every row is the same, K for confident predictions spread evenly over
    K classes."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or not np.allclose(p.sum(1), 1.0, atol=1e-4) or np.any(p < 0):
        raise ValueError(f"probs must be [N, K] rows of class probabilities, got shape {p.shape}")
    marginal = p.mean(0)
    kl = np.sum(p * (np.log(p + eps) - np.log(marginal + eps)), axis=1)
    return float(np.exp(kl.mean()))


def image_scores(reference_images: np.ndarray, image_sets: Dict[str, np.ndarray], dataset: str = "mnist",
                 block_size: int = 1000) -> Dict[str, Dict[str, float]]:
    """`{set name: {frechet_distance, kid, kid_std_error, classifier_score, num_images}}` of each
    `[N, 28, 28, 1]` set in [-1, 1] against `reference_images`, on the features and class
    probabilities of the shipped classifier for `dataset`."""
    from ebm_jax.eval import classifier

    reference, _ = classifier.features(reference_images, dataset)
    report = {}
    for name, images in image_sets.items():
        feats, probs = classifier.features(images, dataset)
        kid, kid_se = kernel_inception_distance(feats, reference, block_size)
        report[name] = {"frechet_distance": frechet_distance(feats, reference), "kid": kid, "kid_std_error": kid_se,
                        "classifier_score": classifier_score(probs), "num_images": int(len(images))}
    return report
