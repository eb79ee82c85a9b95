"""Calibration of a classifier's probabilities (Guo et al. 2017, "On calibration of modern
neural networks"): does a prediction made with confidence c come true a share c of the time?

    reliability(probs, labels, num_bins)    per equal-width confidence bin (0, 1/B], ..., the
                                            mean confidence, the accuracy and the count
    expected_calibration_error(...)         ECE = sum_b (n_b / N) |accuracy_b - confidence_b|

`probs [N, K]` (rows sum to 1), `labels [N]` integers. The confidence of a prediction is its
largest probability and the prediction its argmax; a confidence c falls in bin ceil(c B) - 1
(right-closed bins, so c = 1 is in the last one). Host-side numpy: these are evaluation numbers.
"""

from typing import Dict

import numpy as np


def reliability(probs, labels, num_bins: int = 15) -> Dict[str, np.ndarray]:
    """`{"confidence", "accuracy", "count"}` per bin, each `[num_bins]` (empty bins: 0, 0, 0),
    and `"edges"` `[num_bins + 1]`."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels)
    if probs.ndim != 2 or labels.shape != probs.shape[:1] or len(labels) == 0:
        raise ValueError(f"need probs [N, K] and labels [N] with N >= 1, got {probs.shape} and {labels.shape}")
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    confidence = probs.max(-1)
    correct = (probs.argmax(-1) == labels).astype(np.float64)
    bins = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
    count = np.bincount(bins, minlength=num_bins).astype(np.float64)
    safe = np.maximum(count, 1)
    return {"confidence": np.bincount(bins, confidence, num_bins) / safe,
            "accuracy": np.bincount(bins, correct, num_bins) / safe,
            "count": count, "edges": np.linspace(0.0, 1.0, num_bins + 1)}


def expected_calibration_error(probs, labels, num_bins: int = 15) -> float:
    """ECE with `num_bins` equal-width bins (15 is the usual choice), in [0, 1]."""
    r = reliability(probs, labels, num_bins)
    return float(np.sum(r["count"] / r["count"].sum() * np.abs(r["accuracy"] - r["confidence"])))
