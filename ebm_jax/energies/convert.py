"""The two forms of an energy and the pair of converters between them.

    energy_fn(x) -> []              ONE example -> scalar: what samplers and `compose` take
    batch_energy_fn(x) -> [B]       a batch `[B, ...]` -> `[B]`: what models (`apply_fn` with
                                    bound variables), losses and objectives take

`per_example` turns the second into the first, `batched` the first into the second. Examples of
a batch must not interact (no batch statistics), which holds for every energy of ebm_jax.
"""

from typing import Callable

import jax
import jax.numpy as jnp


def per_example(batch_energy_fn: Callable, *bound) -> Callable:
    """`energy_fn(x, *cond) -> []` from `batch_energy_fn(*bound, x [B, ...], *cond [B]) -> [B]`.

    `per_example(model.apply, variables)` is the energy of one example under `variables`; extra
    per-example inputs (a noise level sigma, a class label) are given unbatched and get a batch
    axis of one, as `x` does. The samplers `vmap` the result over chains, which XLA folds back
    into one batched evaluation.
    """

    def energy_fn(x, *cond):
        return batch_energy_fn(*bound, x[None], *(jnp.asarray(c)[None] for c in cond))[0]

    return energy_fn


def batched(energy_fn: Callable) -> Callable:
    """`batch_energy_fn(x [B, ...], *cond [B]) -> [B]` from a one-example `energy_fn` (a vmap)."""
    return jax.vmap(energy_fn)
