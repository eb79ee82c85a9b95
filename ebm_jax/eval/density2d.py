"""Scores for 2-D models against a known density: grid likelihood, MMD^2, mode coverage.

    grid               cell centres of an n x n grid on [-L, L]^2 and the cell area
    log_normaliser     log Z = log sum_cells exp(-E(c)) * area (midpoint rule)
    heldout_nll        mean E(x) + log Z over held-out points, in nats
    grid_samples       exact draws from the gridded exp(-E) / Z (a cell, then uniform in it)
    mmd2               unbiased MMD^2 with a Gaussian RBF kernel exp(-|x - y|^2 / (2 h^2))
    mode_coverage      share of samples within `radius` of each mode, and of none

`energy_fn` is batched, `[n, 2] -> [n]`; every function evaluates it in chunks.
"""

from typing import Callable, Tuple

import jax
import jax.numpy as jnp


def grid(half_width: float, n: int) -> Tuple[jax.Array, float]:
    """`(points [n * n, 2], cell_area)` on [-half_width, half_width]^2."""
    if n < 2 or not half_width > 0:
        raise ValueError(f"need n >= 2 and half_width > 0, got {n}, {half_width}")
    cell = 2.0 * half_width / n
    axis = (jnp.arange(n) + 0.5) * cell - half_width
    xx, yy = jnp.meshgrid(axis, axis)
    return jnp.stack([xx.ravel(), yy.ravel()], -1), cell * cell


def batched(energy_fn: Callable, x: jax.Array, chunk: int = 8192) -> jax.Array:
    """E over `x [n, 2]` in chunks of `chunk` rows (bounded memory for big grids)."""
    n = x.shape[0]
    pad = (-n) % chunk
    padded = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]).reshape(-1, chunk, *x.shape[1:])
    return jax.lax.map(energy_fn, padded).reshape(-1)[:n]


def log_normaliser(energy_fn: Callable, half_width: float, n: int = 400) -> jax.Array:
    points, area = grid(half_width, n)
    return jax.nn.logsumexp(-batched(energy_fn, points)) + jnp.log(area)


def heldout_nll(energy_fn: Callable, x: jax.Array, half_width: float, n: int = 400) -> jax.Array:
    """Mean negative log-likelihood of `x` under exp(-E) / Z with Z from the grid over the box.
    The model's mass outside the box is not counted, so keep every point of `x` well inside it
    (the toy2d datasets lie within [-3, 3]^2; the experiment's box is [-4, 4]^2)."""
    return jnp.mean(batched(energy_fn, x)) + log_normaliser(energy_fn, half_width, n)


def grid_samples(rng_key, energy_fn: Callable, num_samples: int, half_width: float, n: int = 400) -> jax.Array:
    """Draws from exp(-E) normalised on the grid: a cell by inverse CDF (memory O(cells), not
    O(samples x cells) as Gumbel-max would need), then a uniform point inside it."""
    points, _ = grid(half_width, n)
    key_cell, key_offset = jax.random.split(rng_key)
    log_p = -batched(energy_fn, points)
    cdf = jnp.cumsum(jnp.exp(log_p - jnp.max(log_p)))
    u = jax.random.uniform(key_cell, (num_samples,)) * cdf[-1]
    cells = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1)
    cell = 2.0 * half_width / n
    return points[cells] + cell * (jax.random.uniform(key_offset, (num_samples, 2)) - 0.5)


def mmd2(x: jax.Array, y: jax.Array, bandwidth: float) -> jax.Array:
    """Unbiased MMD^2 (Gretton et al. 2012) of `x [n, d]` and `y [m, d]`; n, m >= 2."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")

    def kernel_mean(a, b, same):
        sq = jnp.sum(jnp.square(a[:, None] - b[None]), -1)
        k = jnp.exp(-sq / (2 * bandwidth**2))
        if same:
            n = a.shape[0]
            return (jnp.sum(k) - jnp.trace(k)) / (n * (n - 1))
        return jnp.mean(k)

    return kernel_mean(x, x, True) + kernel_mean(y, y, True) - 2 * kernel_mean(x, y, False)


def mode_coverage(samples: jax.Array, modes: jax.Array, radius: float) -> Tuple[jax.Array, jax.Array]:
    """`(share_per_mode [K], share_off_modes [])`: a sample counts for its nearest mode if it is
    within `radius` of it."""
    dist = jnp.linalg.norm(samples[:, None] - modes[None], axis=-1)
    nearest = jnp.argmin(dist, axis=-1)
    near = jnp.min(dist, axis=-1) <= radius
    shares = jnp.mean(jax.nn.one_hot(nearest, modes.shape[0]) * near[:, None], axis=0)
    return shares, 1.0 - jnp.mean(near)
