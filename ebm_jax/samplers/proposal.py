"""Pieces shared by the Metropolis-corrected samplers."""

import jax
import jax.numpy as jnp


def normal_like(rng_key, tree):
    """Standard normal noise with the structure, shapes and dtypes of `tree`."""
    leaves, treedef = jax.tree.flatten(tree)
    # One leaf (the common case): use the key as is; a split would cost a hash per chain-step.
    keys = [rng_key] if len(leaves) == 1 else jax.random.split(rng_key, len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])


def metropolis(rng_key, log_ratio, proposed, current):
    """Accepts `proposed` with probability min(1, exp(log_ratio)); a NaN ratio rejects.

    Returns `(state, is_accepted, acceptance_probability)`.
    """
    prob = jnp.exp(jnp.minimum(log_ratio, 0.0))  # NaN stays NaN ...
    accepted = jax.random.uniform(rng_key) < prob  # ... and `u < NaN` is False: rejected
    prob = jnp.where(accepted | (prob >= 0), prob, 0.0)  # report 0, not NaN, for a NaN ratio
    state = jax.tree.map(lambda p, c: jnp.where(accepted, p, c), proposed, current)
    return state, accepted, prob

