"""Closed-form energies with known answers, for tests, benchmarks and examples.

Each returns an `energy_fn` of ONE example (the samplers' convention).
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def gaussian(cov: np.ndarray):
    """E(x) = 0.5 x^T cov^{-1} x for x `[d]`: a zero-mean Gaussian with covariance `cov`."""
    precision = jnp.asarray(np.linalg.inv(np.asarray(cov, np.float64)), jnp.float32)
    return lambda x: 0.5 * x @ precision @ x


def ill_conditioned_covariance(dim: int = 50, condition: float = 100.0, seed: int = 0) -> np.ndarray:
    """A covariance `[dim, dim]` with eigenvalues geometric from 1/sqrt(condition) to
    sqrt(condition) (so its condition number is `condition`), in a fixed random rotation."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    eigenvalues = np.geomspace(1 / np.sqrt(condition), np.sqrt(condition), dim)
    return (q * eigenvalues) @ q.T


def gaussian_mixture_1d(means: Sequence[float] = (-6.0, 6.0), weights: Sequence[float] = (0.3, 0.7), scale: float = 1.0):
    """E(x) = -log sum_i w_i N(x; m_i, scale^2) for a scalar x."""
    means, log_w = jnp.asarray(means), jnp.log(jnp.asarray(weights))
    return lambda x: -jax.nn.logsumexp(log_w - 0.5 * ((x - means) / scale) ** 2 - jnp.log(scale * jnp.sqrt(2 * jnp.pi)))
