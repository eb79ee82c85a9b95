"""Out-of-distribution detection: the field's metrics for any score, and an EBM's two scores.

Convention: a score is higher for inputs that look more in-distribution (for an EBM, -E(x)).
In-distribution inputs are the positives. With thresholds at every distinct score (ties
enter together, as in scikit-learn's `roc_curve`):

    auroc            area under the ROC curve (trapezoids): P(s_in > s_out) + P(s_in = s_out) / 2
    aupr_in          average precision with the in-distribution inputs as positives,
                     sum_k (R_k - R_{k-1}) P_k (scikit-learn's `average_precision_score`)
    aupr_out         the same with the out-of-distribution inputs as positives (scores negated)
    fpr_at_tpr       the false-positive rate at the first threshold whose TPR reaches `tpr`
                     (FPR@95 for tpr = 0.95)
    detection_error  min over thresholds of (1 - TPR) / 2 + FPR / 2 (Liang et al. 2018)

All take 1-D arrays and return Python floats; they run on the host (NumPy), after the scores.
`negative_energy` and `negative_grad_norm` compute -E(x) and -||grad_x E(x)|| over a dataset in
fixed-size batches (`energy_score` / `grad_norm_score`, the jitted scores, for reuse; a
classifier energy adds `max_probability_score`, max_y p(y | x)); `ood_table` gives every metric
for one in-distribution set against several out-of-distribution ones; `ood_benchmark` runs the
scores of an image EBM against another dataset, uniform and Gaussian noise and the tutorial's
three edits of the test images.
"""

from typing import Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.data.batching import padded_batches
from ebm_jax.eval.analysis import flipped, noisy, shrunk

METRICS = ("auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr", "detection_error")


def _check(scores_in, scores_out) -> Tuple[np.ndarray, np.ndarray]:
    scores_in = np.asarray(scores_in, np.float64)
    scores_out = np.asarray(scores_out, np.float64)
    if scores_in.ndim != 1 or scores_out.ndim != 1 or not len(scores_in) or not len(scores_out):
        raise ValueError(f"scores must be non-empty 1-D arrays, got shapes {scores_in.shape}, {scores_out.shape}")
    if not (np.all(np.isfinite(scores_in)) and np.all(np.isfinite(scores_out))):
        raise ValueError("scores must be finite")
    return scores_in, scores_out


def roc_points(scores_in, scores_out) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(fpr, tpr, thresholds)` at every distinct score, thresholds decreasing, with the point
    (0, 0) first (threshold +inf): a score >= threshold counts as "in"."""
    scores_in, scores_out = _check(scores_in, scores_out)
    scores = np.concatenate([scores_in, scores_out])
    is_in = np.concatenate([np.ones(len(scores_in)), np.zeros(len(scores_out))])
    order = np.argsort(-scores, kind="mergesort")
    scores, is_in = scores[order], is_in[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_pos = np.cumsum(is_in)[last_of_tie]
    false_pos = (last_of_tie + 1) - true_pos
    tpr = np.r_[0.0, true_pos / len(scores_in)]
    fpr = np.r_[0.0, false_pos / len(scores_out)]
    return fpr, tpr, np.r_[np.inf, scores[last_of_tie]]


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve; 1 = every in-distribution score above every other, 0.5 = chance."""
    fpr, tpr, _ = roc_points(scores_in, scores_out)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def aupr_in(scores_in, scores_out) -> float:
    """Average precision with the in-distribution inputs as positives."""
    fpr, tpr, _ = roc_points(scores_in, scores_out)
    n_in, n_out = len(np.atleast_1d(scores_in)), len(np.atleast_1d(scores_out))
    true_pos, false_pos = tpr[1:] * n_in, fpr[1:] * n_out
    precision = true_pos / (true_pos + false_pos)
    return float(np.sum(np.diff(tpr) * precision))


def aupr_out(scores_in, scores_out) -> float:
    """Average precision with the out-of-distribution inputs as positives (scores negated)."""
    scores_in, scores_out = _check(scores_in, scores_out)
    return aupr_in(-scores_out, -scores_in)


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """The FPR at the first threshold (from the top) where the TPR reaches `tpr`."""
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    fpr, tprs, _ = roc_points(scores_in, scores_out)
    return float(fpr[np.argmax(tprs >= tpr - 1e-12)])


def detection_error(scores_in, scores_out) -> float:
    """min over thresholds of the error with equal priors, (1 - TPR) / 2 + FPR / 2."""
    fpr, tpr, _ = roc_points(scores_in, scores_out)
    return float(np.min(0.5 * (1 - tpr) + 0.5 * fpr))


def metrics(scores_in, scores_out) -> Dict[str, float]:
    """Every metric of this module, `{name: value}` (names in `METRICS`)."""
    return {"auroc": auroc(scores_in, scores_out), "aupr_in": aupr_in(scores_in, scores_out),
            "aupr_out": aupr_out(scores_in, scores_out), "fpr_at_95_tpr": fpr_at_tpr(scores_in, scores_out, 0.95),
            "detection_error": detection_error(scores_in, scores_out)}


def ood_table(scores_in, scores_out: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
    """`{out-of-distribution set: metrics(scores_in, its scores)}`."""
    return {name: metrics(scores_in, scores) for name, scores in scores_out.items()}


def energy_score(apply_fn: Callable) -> Callable:
    """`score(variables, x [B, ...]) -> -E(x) [B]`, jitted once (reuse it across datasets)."""
    return jax.jit(lambda variables, x: -apply_fn(variables, x))


def grad_norm_score(apply_fn: Callable) -> Callable:
    """`score(variables, x [B, ...]) -> -||grad_x E(x)|| [B]`, jitted once: each example's own
    gradient (the energies of a batch do not interact, so the gradient of their sum holds them all)."""
    def score(variables, x):
        grad = jax.grad(lambda x: jnp.sum(apply_fn(variables, x)))(x)
        return -jnp.sqrt(jnp.sum(jnp.square(grad).reshape(x.shape[0], -1), -1))

    return jax.jit(score)


def max_probability_score(apply_fn: Callable) -> Callable:
    """`score(variables, x) -> max_y p(y | x) [B]` (Hendrycks & Gimpel 2017), jitted once, for a
    classifier energy whose `apply_fn(variables, x, method="probs")` gives p(y | x)
    (`energies.ClassifierEnergy`)."""
    return jax.jit(lambda variables, x: jnp.max(apply_fn(variables, x, method="probs"), axis=-1))


SCORES = {"neg_energy": energy_score, "neg_grad_norm": grad_norm_score}
CLASSIFIER_SCORES = dict(SCORES, max_prob=max_probability_score)


def negative_energy(apply_fn: Callable, variables, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """-E(x) `[N]` for `images [N, ...]`."""
    return _batched(energy_score(apply_fn), variables, images, batch_size)


def negative_grad_norm(apply_fn: Callable, variables, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """-||grad_x E(x)|| `[N]` for `images [N, ...]`."""
    return _batched(grad_norm_score(apply_fn), variables, images, batch_size)


def out_of_distribution_sets(rng_key: jax.Array, test_images: np.ndarray,
                             other: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
    """The benchmark's out-of-distribution sets for images in [-1, 1], each as large as the test
    split: `other` datasets (e.g. {"fashion_mnist": ...}), uniform noise U(-1, 1), Gaussian noise
    clip(N(0, 1), -1, 1), and the test images noised (sigma 0.3), flipped (both axes) and shrunk
    to the bottom-right quadrant (the tutorial's edits, `eval.analysis`)."""
    key_uniform, key_gauss, key_edit = jax.random.split(rng_key, 3)
    shape = test_images.shape
    sets = dict(other or {})
    sets["uniform_noise"] = np.asarray(jax.random.uniform(key_uniform, shape, minval=-1.0, maxval=1.0))
    sets["gaussian_noise"] = np.clip(np.asarray(jax.random.normal(key_gauss, shape)), -1.0, 1.0)
    sets["noisy_sigma_0.3"] = noisy(key_edit, test_images, 0.3)
    sets["flipped"] = flipped(test_images)
    sets["shrunk_bottom_right"] = shrunk(test_images)
    return sets


def ood_benchmark(apply_fn: Callable, variables, rng_key: jax.Array, test_images: np.ndarray,
                  other: Optional[Dict[str, np.ndarray]] = None, batch_size: int = 256,
                  scores: Optional[Dict[str, Callable]] = None) -> Dict:
    """`{score name: ood_table}` for `scores` (`{name: builder(apply_fn) -> score}`; default
    `SCORES`, `CLASSIFIER_SCORES` for a classifier energy), in-distribution = `test_images`
    against `out_of_distribution_sets(rng_key, test_images, other)`; plus the sets' sizes."""
    sets = out_of_distribution_sets(rng_key, test_images, other)
    report = {"num_images": {"in_distribution_test": len(test_images), **{k: len(v) for k, v in sets.items()}}}
    for name, make_score in (SCORES if scores is None else scores).items():
        score = make_score(apply_fn)  # compiled once for every set
        scores_in = _batched(score, variables, test_images, batch_size)
        report[name] = ood_table(scores_in, {k: _batched(score, variables, v, batch_size) for k, v in sets.items()})
    return report


def _batched(score, variables, images, batch_size):
    return np.concatenate([np.asarray(score(variables, jnp.asarray(batch)))[valid]
                           for batch, valid in padded_batches(images, batch_size)])
