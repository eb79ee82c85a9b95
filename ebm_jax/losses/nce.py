"""Noise-contrastive estimation (Gutmann & Hyvaerinen 2010, 2012).

The model log-density is log p(x) = -E(x) - log_z with log_z a LEARNED scalar. With nu noise
samples y ~ q per data sample x, logistic regression of data against noise on the log-odds

    G(u) = -E(u) - log_z - log q(u) - log nu

    loss = -mean_x log sigmoid(G(x)) - nu * mean_y log sigmoid(-G(y))

is minimised by the true density and its true normaliser, so log_z comes out calibrated.
The noise must cover the data and have a density we can evaluate: `fitted_gaussian` (the data's
mean and covariance, the default in the objectives) or `uniform_box`.
"""

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class NoiseDistribution(NamedTuple):
    """A noise q over examples of shape `event_shape`, `sample(rng_key, n) -> [n, *event_shape]`
    and `log_prob([n, *event_shape]) -> [n]`."""

    sample: Callable
    log_prob: Callable
    event_shape: tuple


def fitted_gaussian(data, scale: float = 1.0, jitter: float = 1e-6) -> NoiseDistribution:
    """N(mean, scale^2 * Cov) of `data [n, ...]` (flattened per example, full covariance)."""
    data = np.asarray(data, np.float64)
    if data.ndim < 2 or data.shape[0] < 2:
        raise ValueError(f"fitted_gaussian needs data [n >= 2, ...], got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("fitted_gaussian: the data contain NaN or inf")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    event_shape = data.shape[1:]
    flat = data.reshape(data.shape[0], -1)
    dim = flat.shape[1]
    mean = flat.mean(0)
    cov = np.atleast_2d(np.cov(flat, rowvar=False)) * scale**2 + jitter * np.eye(dim)
    chol = np.linalg.cholesky(cov)
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    mean_j, chol_j = jnp.asarray(mean, jnp.float32), jnp.asarray(chol, jnp.float32)
    const = float(-0.5 * (dim * np.log(2 * np.pi) + log_det))

    def sample(rng_key, n):
        z = jax.random.normal(rng_key, (n, dim))
        return (mean_j + z @ chol_j.T).reshape((n,) + event_shape)

    def log_prob(x):
        diff = x.reshape(x.shape[0], -1) - mean_j
        white = jax.scipy.linalg.solve_triangular(chol_j, diff.T, lower=True)
        return const - 0.5 * jnp.sum(jnp.square(white), axis=0)

    return NoiseDistribution(sample, log_prob, event_shape)


def uniform_box(low: float, high: float, event_shape: Sequence[int]) -> NoiseDistribution:
    """Uniform on [low, high]^d; log q = -d log(high - low) inside (the data must lie inside)."""
    if not high > low:
        raise ValueError(f"need high > low, got [{low}, {high}]")
    event_shape = tuple(int(s) for s in event_shape)
    log_density = -float(np.prod(event_shape)) * float(np.log(high - low))

    def sample(rng_key, n):
        return jax.random.uniform(rng_key, (n,) + event_shape, minval=low, maxval=high)

    def log_prob(x):
        return jnp.full((x.shape[0],), log_density, x.dtype)

    return NoiseDistribution(sample, log_prob, event_shape)


def noise_contrastive_estimation(
    energy_data: jax.Array,
    energy_noise: jax.Array,
    log_q_data: jax.Array,
    log_q_noise: jax.Array,
    log_z: jax.Array,
):
    """E and log q at `[B]` data points and `[nu B]` noise points -> `(loss, metrics)`."""
    nu = energy_noise.shape[0] / energy_data.shape[0]
    log_nu = jnp.log(nu)
    logit_data = -energy_data - log_z - log_q_data - log_nu
    logit_noise = -energy_noise - log_z - log_q_noise - log_nu
    loss = -jnp.mean(jax.nn.log_sigmoid(logit_data)) - nu * jnp.mean(jax.nn.log_sigmoid(-logit_noise))
    accuracy = 0.5 * (jnp.mean(logit_data > 0) + jnp.mean(logit_noise < 0))
    return loss, dict(
        loss=loss,
        nce_accuracy=accuracy,
        log_z=log_z,
        energy_real=jnp.mean(energy_data),
        energy_fake=jnp.mean(energy_noise),
    )
