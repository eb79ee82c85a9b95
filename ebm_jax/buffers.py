"""A replay buffer for persistent negative samples, as a fixed-capacity PyTree.

The tutorial keeps a Python list of up to 8192 images, starts it with `batch_size` uniform-noise
images, draws each training batch's chain starts with replacement from the list except for a
Binomial(batch, 0.05) share of fresh uniform noise, and puts the sampled images back, dropping
the oldest. Here the same behaviour lives in arrays, so it can sit inside a jitted step:

  samples  [capacity, *example_shape]  the stored examples (slots >= size hold unused noise)
  size     int32 []                    how many slots are filled, <= capacity
  cursor   int32 []                    the slot the next push writes first (the oldest, once full)

Class-conditional chains (JEM's p(x | y) term) keep one such ring per class in one
`ReplayBuffer` with a leading class axis (`init_by_class`): samples `[K, capacity, ...]`, size
and cursor `[K]`. A chain of label y starts from class y's ring (`sample_by_class`) and is pushed
back into it (`push_by_class`).
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
    return _refresh(key_fresh, key_noise, buffer.samples[index], reinit_prob, bounds)


def _refresh(key_fresh, key_noise, stored, reinit_prob, bounds):
    """`(starts, is_fresh)`: each row of `stored` replaced by uniform noise with prob. `reinit_prob`."""
    noise = _uniform(key_noise, stored.shape, bounds, stored.dtype)
    is_fresh = jax.random.bernoulli(key_fresh, reinit_prob, (stored.shape[0],))
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


def init_by_class(
    rng_key: jax.Array,
    num_classes: int,
    capacity: int,
    example_shape: Sequence[int],
    initial_size: int,
    bounds: Tuple[float, float] = (-1.0, 1.0),
    dtype=jnp.float32,
) -> ReplayBuffer:
    """`num_classes` rings of `capacity` each, every one started with `initial_size` uniform-noise
    examples: samples `[K, capacity, ...]`, size and cursor `[K]`."""
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    keys = jax.random.split(rng_key, int(num_classes))
    return jax.vmap(lambda key: init(key, capacity, example_shape, initial_size, bounds, dtype))(keys)


def sample_by_class(
    rng_key: jax.Array,
    buffer: ReplayBuffer,
    labels: jax.Array,
    reinit_prob: float = 0.05,
    bounds: Tuple[float, float] = (-1.0, 1.0),
) -> Tuple[jax.Array, jax.Array]:
    """`sample` per label: row i of the `[len(labels), ...]` starts is drawn from class
    `labels[i]`'s filled slots (or fresh noise with prob. `reinit_prob`). Returns
    `(starts, is_fresh)`."""
    key_index, key_fresh, key_noise = jax.random.split(rng_key, 3)
    index = jax.random.randint(key_index, labels.shape, 0, buffer.size[labels])
    return _refresh(key_fresh, key_noise, buffer.samples[labels, index], reinit_prob, bounds)


def push_by_class(buffer: ReplayBuffer, labels: jax.Array, batch: jax.Array) -> ReplayBuffer:
    """Writes row i of `batch` `[n, ...]` into class `labels[i]`'s ring, over its oldest slots; rows
    of one class take consecutive slots in batch order. `n` must be <= capacity."""
    num_classes, capacity = buffer.samples.shape[:2]
    n = batch.shape[0]
    if n > capacity:
        raise ValueError(f"cannot push {n} examples into rings of capacity {capacity}")
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.int32)
    rank = jnp.sum(jnp.cumsum(onehot, axis=0) * onehot, axis=1) - 1   # earlier rows of the same class
    slots = (buffer.cursor[labels] + rank) % capacity
    samples = buffer.samples.at[labels, slots].set(batch.astype(buffer.samples.dtype))
    counts = jnp.sum(onehot, axis=0)
    return ReplayBuffer(samples, jnp.minimum(buffer.size + counts, capacity).astype(jnp.int32),
                        ((buffer.cursor + counts) % capacity).astype(jnp.int32))


def _uniform(rng_key, shape, bounds, dtype):
    low, high = bounds
    return jax.random.uniform(rng_key, shape, dtype, minval=low, maxval=high)


def newest(buffer: ReplayBuffer, n: int) -> jax.Array:
    """The `n` most recently pushed examples, oldest first, `[n, ...]` (n <= size)."""
    capacity = buffer.samples.shape[0]
    slots = (buffer.cursor - n + jnp.arange(n)) % capacity
    return buffer.samples[slots]
