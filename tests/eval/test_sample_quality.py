"""Sample-quality scores against closed forms and their stated errors."""

import numpy as np
import pytest
from scipy.linalg import sqrtm

from ebm_jax.eval import sample_quality as sq


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    # Diagonal covariances: |mu_a - mu_b|^2 + sum (s_a + s_b - 2 sqrt(s_a s_b)) = ... + sum (sqrt s_a - sqrt s_b)^2
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s_a, s_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 1 + 4 + (1 + 1 + 0)
    assert sq.frechet_distance_from_moments(mu_a, np.diag(s_a), mu_b, np.diag(s_b)) == pytest.approx(expected)
    # Full covariances against tr(C_a + C_b - 2 sqrtm(C_a C_b)) (scipy's general square root).
    c_a, c_b = random_spd(rng, 6), random_spd(rng, 6)
    m_a, m_b = rng.normal(size=6), rng.normal(size=6)
    reference = np.sum((m_a - m_b) ** 2) + np.trace(c_a + c_b - 2 * np.real(sqrtm(c_a @ c_b)))
    assert sq.frechet_distance_from_moments(m_a, c_a, m_b, c_b) == pytest.approx(reference, rel=1e-8)
    assert sq.frechet_distance_from_moments(m_a, c_a, m_a, c_a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_samples_converges_to_the_closed_form():
    """200,000 draws per set in 4-D: the estimate's error is O(D / N) in bias plus O(1/sqrt(N))
    noise, far below the 0.02 allowed (the distance itself is about 2.1)."""
    rng = np.random.default_rng(1)
    c_a, c_b = random_spd(rng, 4), random_spd(rng, 4)
    m_a, m_b = np.zeros(4), np.full(4, 0.5)
    a = rng.multivariate_normal(m_a, c_a, 200_000)
    b = rng.multivariate_normal(m_b, c_b, 200_000)
    exact = sq.frechet_distance_from_moments(m_a, c_a, m_b, c_b)
    assert sq.frechet_distance(a, b) == pytest.approx(exact, abs=0.02)


def test_kid_of_one_distribution_is_zero_within_its_error():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4000, 16)), rng.normal(size=(4000, 16))
    kid, se = sq.kernel_inception_distance(a, b, block_size=500)
    assert se > 0 and abs(kid) < 3 * se
    shifted, se_shifted = sq.kernel_inception_distance(a, b + 0.5, block_size=500)
    assert shifted > 10 * se_shifted


def test_classifier_score_bounds():
    assert sq.classifier_score(np.full((10, 4), 0.25)) == pytest.approx(1.0)
    assert sq.classifier_score(np.eye(4)[np.arange(20) % 4]) == pytest.approx(4.0, rel=1e-6)
    with pytest.raises(ValueError, match="probabilities"):
        sq.classifier_score(np.ones((3, 2)))


def test_bad_features_are_rejected():
    with pytest.raises(ValueError, match="N >= 2"):
        sq.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="dimensions"):
        sq.frechet_distance(np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        sq.kernel_inception_distance(np.full((8, 2), np.nan), np.zeros((8, 2)))
