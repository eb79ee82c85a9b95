"""The train state: everything that changes during training, as one PyTree of arrays.

Hyper-parameters never live here; they are closed over by `make_train_step`.
"""

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from ebm_jax import buffers


class TrainState(NamedTuple):
    step: jax.Array  # int32 [], number of train steps taken
    params: Any  # the energy's Flax params
    opt_state: optax.OptState
    buffer: buffers.ReplayBuffer
    rng_key: jax.Array  # a typed key (`jax.random.key`); step t uses fold_in(rng_key, t)


def create_train_state(
    rng_key: jax.Array,
    model,
    optimizer: optax.GradientTransformation,
    example_shape: Sequence[int],
    batch_size: int,
    buffer_capacity: int = 8192,
    bounds=(-1.0, 1.0),
) -> TrainState:
    """Initial params (`model.init` on a dummy batch), optimizer state and a buffer holding
    `batch_size` noise examples (as the tutorial)."""
    if batch_size > buffer_capacity:
        raise ValueError(f"batch_size={batch_size} exceeds buffer_capacity={buffer_capacity}")
    key_params, key_buffer, key_train = jax.random.split(rng_key, 3)
    params = model.init(key_params, jnp.zeros((1, *example_shape), jnp.float32))
    buffer = buffers.init(key_buffer, buffer_capacity, example_shape, batch_size, bounds)
    return TrainState(
        step=jnp.asarray(0, jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        buffer=buffer,
        rng_key=key_train,
    )
