"""Targets with known answers shared by the sampler tests and benchmarks."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import norm


def gaussian(cov: np.ndarray):
    """E(x) = 0.5 x^T cov^{-1} x for one example `[d]`."""
    precision = jnp.asarray(np.linalg.inv(cov), jnp.float32)
    return lambda x: 0.5 * x @ precision @ x


def ill_conditioned_cov(dim=50, condition=100.0, seed=0) -> np.ndarray:
    """A rotated Gaussian covariance with eigenvalues geometric from 1/sqrt(c) to sqrt(c)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    eig = np.geomspace(1 / np.sqrt(condition), np.sqrt(condition), dim)
    return (q * eig) @ q.T


def z_critical(num_tests: int, family_alpha: float = 1e-3) -> float:
    """Bonferroni-corrected two-sided critical value."""
    return float(norm.isf(family_alpha / (2 * num_tests)))


def mixture_1d(means=(-6.0, 6.0), weights=(0.3, 0.7)):
    """E(x) = -log sum_i w_i N(x; m_i, 1) for a scalar x."""
    means, log_w = jnp.asarray(means), jnp.log(jnp.asarray(weights))
    return lambda x: -jax.nn.logsumexp(log_w - 0.5 * (x - means) ** 2 - 0.5 * jnp.log(2 * jnp.pi))
