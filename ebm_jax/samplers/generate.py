"""Generation from noise: many chains of one sampler started from uniform noise."""

from typing import Callable, Dict, Optional, Sequence, Tuple

import jax

from ebm_jax.samplers.loop import run_chains
from ebm_jax.types import EnergyFn


def generate_from_noise(
    rng_key: jax.Array,
    energy_fn: EnergyFn,
    sampler_init: Callable,
    sampler_kernel: Callable,
    sampler_params: Dict,
    example_shape: Sequence[int],
    num_chains: int,
    num_steps: int,
    thin: Optional[int] = None,
    bounds: Tuple[float, float] = (-1.0, 1.0),
    sampler_draw: Optional[Callable] = None,
    chain_group: Optional[int] = None,
):
    """Runs `num_chains` chains for `num_steps` steps from Uniform(bounds) noise.

    `sampler_draw`: optional `draw(rng_key, state)`; then `sampler_kernel` is its move, taking
    the draws in place of the key (`run_chains(..., draw=...)`).
    `chain_group`: optional; the chains run in groups of at most this many, one group after
    another (`run_chains(..., chain_group=...)`; the same numbers).

    Returns `(samples [num_chains, *example_shape], trace)`, where `trace` is
    `[num_steps // thin, num_chains, *example_shape]` (None when `thin` is None).
    """
    key_init, key_run = jax.random.split(rng_key)
    starts = jax.random.uniform(key_init, (num_chains, *example_shape), minval=bounds[0], maxval=bounds[1])
    states = jax.vmap(lambda x: sampler_init(x, energy_fn))(starts)

    def step(first, state):
        return sampler_kernel(first, state, energy_fn, **sampler_params)

    final, trace, _ = run_chains(key_run, step, states, num_steps, thin, draw=sampler_draw, chain_group=chain_group)
    return final.position, (None if trace is None else trace.position)
