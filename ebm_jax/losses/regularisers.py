"""Regularisers that any objective can add to its loss.

    energy_l2          alpha * (mean E(real)^2 + mean E(fake)^2)    (in `contrastive`)
    gradient_penalty   mean_i ||grad_x E(x_i)||^2                   (e.g. Kumar et al. 2019;
                       "R1" of Mescheder et al. 2018 when evaluated at the data)

`energy_fn` here is BATCHED, `[B, ...] -> [B]`, with examples independent of each other, so
grad_x of sum_i E(x_i) is the per-example gradient.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from ebm_jax.losses.contrastive import energy_l2


def input_grad(energy_fn: Callable, x: jax.Array) -> jax.Array:
    """grad_x E(x) for a batch, `[B, ...]` (one backward pass through the summed energies)."""
    return jax.grad(lambda y: jnp.sum(energy_fn(y)))(x)


def gradient_penalty(energy_fn: Callable, x: jax.Array) -> jax.Array:
    """mean over the batch of ||grad_x E(x_i)||^2, differentiable in the energy's params."""
    grads = input_grad(energy_fn, x)
    return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1))


__all__ = ["energy_l2", "gradient_penalty", "input_grad"]
