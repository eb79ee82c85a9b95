"""Annealed Langevin dynamics (Song & Ermon 2019) for noise-conditional energies E(x, sigma).

For noise levels sigma_1 > ... > sigma_L, run `steps_per_level` textbook Langevin steps at each
level with alpha_i = eps * sigma_i^2 / sigma_L^2:
    x <- x - (alpha_i / 2) grad_x E(x, sigma_i) + sqrt(alpha_i) z
i.e. the `langevin` kernel ("grad_first") with step_size = alpha_i / 2 and its default noise.
"""

from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp

from ebm_jax import compose
from ebm_jax.samplers import langevin
from ebm_jax.samplers.loop import run_chains


def step_sizes(sigmas: jax.Array, eps: float) -> jax.Array:
    """alpha_i = eps * sigma_i^2 / sigma_L^2, `[L]`."""
    sigmas = jnp.asarray(sigmas)
    return eps * jnp.square(sigmas / sigmas[-1])


def annealed_langevin(
    rng_key: jax.Array,
    energy_fn: Callable,
    positions,
    sigmas,
    steps_per_level: int,
    eps: float,
    grad_clip: Optional[float] = None,
    bounds: Optional[Tuple[float, float]] = None,
):
    """Runs the annealed chains. `energy_fn(x, sigma) -> []` for ONE example; `positions` has a
    leading chain axis; `sigmas` must decrease. Returns `(final_positions, per_level)` where
    `per_level` holds the positions at the end of each level, `[L, num_chains, ...]`."""
    sigmas = jnp.asarray(sigmas, jnp.float32)
    if sigmas.ndim != 1 or sigmas.shape[0] < 1:
        raise ValueError(f"sigmas must be a non-empty 1-D sequence, got shape {sigmas.shape}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    kernel = langevin.build_kernel("grad_first")
    alphas = step_sizes(sigmas, eps)

    def level(states, inputs):
        key, sigma, alpha = inputs

        def step(k, s):
            return kernel(k, s, compose.condition(energy_fn, sigma), alpha / 2, None, grad_clip, bounds)

        states, _, _ = run_chains(key, step, states, steps_per_level)
        return states, states.position

    keys = jax.random.split(rng_key, sigmas.shape[0])
    states = jax.vmap(langevin.init)(positions)
    final, per_level = jax.lax.scan(level, states, (keys, sigmas, alphas))
    return final.position, per_level
