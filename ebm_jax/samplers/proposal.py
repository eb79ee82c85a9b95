"""Pieces shared by the Metropolis-corrected samplers."""

import jax
import jax.numpy as jnp


def normal_like(rng_key, tree):
    """Standard normal noise with the structure, shapes and dtypes of `tree`."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(rng_key, len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])


def metropolis(rng_key, log_ratio, proposed, current):
    """Accepts `proposed` with probability min(1, exp(log_ratio)); a NaN ratio rejects.

    Returns `(state, is_accepted, acceptance_probability)`.
    """
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accepted = jnp.log(jax.random.uniform(rng_key)) < log_ratio
    state = jax.tree.map(lambda p, c: jnp.where(accepted, p, c), proposed, current)
    return state, accepted, prob


def tree_dot(a, b):
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
