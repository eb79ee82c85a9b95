"""Calibration numbers on cases computed by hand."""

import numpy as np
import pytest

from ebm_jax.eval import calibration


def test_ece_by_hand():
    # Two bins. Bin 1 (confidence in (0.5, 1]): confidences 0.9, 0.8, 0.6; correct, correct, wrong.
    # Bin 0 ((0, 0.5]): confidence 0.5 (a tie resolved to class 0 by argmax), correct.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    labels = np.array([0, 1, 1, 0])
    r = calibration.reliability(probs, labels, num_bins=2)
    np.testing.assert_allclose(r["count"], [1, 3])
    np.testing.assert_allclose(r["confidence"], [0.5, (0.9 + 0.8 + 0.6) / 3])
    np.testing.assert_allclose(r["accuracy"], [1.0, 2 / 3])
    expected = 0.25 * abs(1.0 - 0.5) + 0.75 * abs(2 / 3 - 2.3 / 3)
    assert calibration.expected_calibration_error(probs, labels, 2) == pytest.approx(expected)


def test_a_calibrated_predictor_has_ece_near_zero_and_an_overconfident_one_does_not():
    rng = np.random.default_rng(0)
    n = 200_000
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.uniform(size=n) < confidence           # right with probability = its confidence
    probs = np.stack([confidence, 1 - confidence], -1)
    labels = np.where(correct, 0, 1)
    ece = calibration.expected_calibration_error(probs, labels)
    # Binomial noise per bin: sqrt(c (1 - c) / n_b) ~ 0.003 with ~27k per bin; the bins' width adds
    # nothing (the accuracy in a bin is its mean confidence).
    assert ece < 0.01
    sharpened = np.stack([np.full(n, 0.99), np.full(n, 0.01)], -1)
    assert calibration.expected_calibration_error(sharpened, labels) == pytest.approx(0.99 - correct.mean(), abs=1e-9)


def test_bad_inputs():
    with pytest.raises(ValueError, match="probs"):
        calibration.reliability(np.ones(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="num_bins"):
        calibration.reliability(np.ones((2, 2)) / 2, np.zeros(2, int), 0)
