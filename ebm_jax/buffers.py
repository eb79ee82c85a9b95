"""A replay buffer for persistent negative samples, as a fixed-capacity PyTree.

The tutorial keeps a Python list of up to 8192 images, starts it with `batch_size` uniform-noise
images, draws each training batch's chain starts with replacement from the list except for a
Binomial(batch, 0.05) share of fresh uniform noise, and puts the sampled images back, dropping
the oldest. Here the same behaviour lives in arrays, so it can sit inside a jitted step:

  samples  [capacity, *example_shape]  the stored examples (slots >= size hold unused noise)
  size     int32 []                    how many slots are filled, <= capacity
  cursor   int32 []                    the slot the next push writes first (the oldest, once full)
"""

from typing import NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp


class ReplayBuffer(NamedTuple):
    samples: jax.Array
    size: jax.Array
    cursor: jax.Array


def init(
    rng_key: jax.Array,
    capacity: int,
    example_shape: Sequence[int],
    initial_size: int,
    bounds: Tuple[float, float] = (-1.0, 1.0),
    dtype=jnp.float32,
) -> ReplayBuffer:
    """A buffer holding `initial_size` uniform-noise examples (the tutorial: batch_size of them)."""
    capacity, initial_size = int(capacity), int(initial_size)
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    if not 1 <= initial_size <= capacity:
        raise ValueError(f"initial_size must be in [1, capacity={capacity}], got {initial_size}")
    samples = _uniform(rng_key, (capacity, *example_shape), bounds, dtype)
    return ReplayBuffer(
        samples, jnp.asarray(initial_size, jnp.int32), jnp.asarray(initial_size % capacity, jnp.int32)
    )


def sample(
    rng_key: jax.Array,
    buffer: ReplayBuffer,
    batch_size: int,
    reinit_prob: float = 0.05,
    bounds: Tuple[float, float] = (-1.0, 1.0),
) -> Tuple[jax.Array, jax.Array]:
    """Draws `[batch_size, ...]` chain starts: each row is fresh uniform noise with probability
    `reinit_prob` (so the fresh count is Binomial(batch_size, reinit_prob)), otherwise a stored
    example drawn uniformly with replacement from the filled slots.

    Returns `(starts, is_fresh)`, `is_fresh` a bool `[batch_size]`.
    """
    key_index, key_fresh, key_noise = jax.random.split(rng_key, 3)
    index = jax.random.randint(key_index, (batch_size,), 0, buffer.size)
    stored = buffer.samples[index]
    noise = _uniform(key_noise, stored.shape, bounds, stored.dtype)
    is_fresh = jax.random.bernoulli(key_fresh, reinit_prob, (batch_size,))
    mask = is_fresh.reshape(-1, *([1] * (stored.ndim - 1)))
    return jnp.where(mask, noise, stored), is_fresh


def push(buffer: ReplayBuffer, batch: jax.Array) -> ReplayBuffer:
    """Writes `batch` `[n, ...]` over the oldest slots (a ring); `n` must be <= capacity."""
    capacity = buffer.samples.shape[0]
    n = batch.shape[0]
    if n > capacity:
        raise ValueError(f"cannot push {n} examples into a buffer of capacity {capacity}")
    slots = (buffer.cursor + jnp.arange(n)) % capacity
    samples = buffer.samples.at[slots].set(batch.astype(buffer.samples.dtype))
    size = jnp.minimum(buffer.size + n, capacity)
    return ReplayBuffer(samples, size.astype(jnp.int32), ((buffer.cursor + n) % capacity).astype(jnp.int32))


def _uniform(rng_key, shape, bounds, dtype):
    low, high = bounds
    return jax.random.uniform(rng_key, shape, dtype, minval=low, maxval=high)


def newest(buffer: ReplayBuffer, n: int) -> jax.Array:
    """The `n` most recently pushed examples, oldest first, `[n, ...]` (n <= size)."""
    capacity = buffer.samples.shape[0]
    slots = (buffer.cursor - n + jnp.arange(n)) % capacity
    return buffer.samples[slots]
