"""The `lax.scan` driver shared by every sampler.

`run_chain` advances ONE chain `num_steps` times; `run_chains` vmaps it over a leading chain
axis (the vmap sits inside the scan body, so XLA sees one batched energy evaluation per step).
Keys are pre-split per step: step i uses `keys[i]`, and chain c uses `split(keys[i])[c]`.
"""

from typing import Callable, Optional, Tuple

import jax

from ebm_jax.types import ArrayTree


def run_chain(
    rng_key: jax.Array,
    step: Callable,
    initial_state,
    num_steps: int,
    thin: Optional[int] = None,
) -> Tuple[object, Optional[ArrayTree], ArrayTree]:
    """Runs `state, info = step(key, state)` for `num_steps` steps.

    Returns `(final_state, trace, infos)`: `trace` holds the state after steps
    thin, 2*thin, ..., num_steps (`[num_steps // thin, ...]`), `None` when `thin` is None;
    `infos` stacks every step's info (`[num_steps, ...]`).
    """
    _check_steps(num_steps, thin)
    keys = jax.random.split(rng_key, num_steps)
    if thin is None:
        def body(state, key):
            state, info = step(key, state)
            return state, info

        final, infos = jax.lax.scan(body, initial_state, keys)
        return final, None, infos

    # Outer scan over snapshots, inner scan over the `thin` steps between them.
    keys = keys.reshape(num_steps // thin, thin, *keys.shape[1:])

    def inner(state, key):
        return step(key, state)

    def outer(state, block_keys):
        state, infos = jax.lax.scan(inner, state, block_keys)
        return state, (state, infos)

    final, (trace, infos) = jax.lax.scan(outer, initial_state, keys)
    infos = jax.tree.map(lambda a: a.reshape(num_steps, *a.shape[2:]), infos)
    return final, trace, infos


def run_chains(
    rng_key: jax.Array,
    step: Callable,
    initial_states,
    num_steps: int,
    thin: Optional[int] = None,
    axis_name: Optional[str] = None,
):
    """`run_chain` over a leading chain axis of `initial_states`.

    The trace is `[num_steps // thin, num_chains, ...]`, infos `[num_steps, num_chains, ...]`.
    `axis_name`: inside `jax.shard_map` over that mesh axis, where each device holds its slice
    of the chains, chain c of device d takes the key that chain `d * num_chains + c` takes
    unsharded, so the sharded run draws the same numbers as one device.
    """
    num_chains = jax.tree.leaves(initial_states)[0].shape[0]

    def batched_step(key, states):
        return jax.vmap(step)(_chain_keys(key, num_chains, axis_name), states)

    return run_chain(rng_key, batched_step, initial_states, num_steps, thin)


def _chain_keys(key, num_chains, axis_name):
    if axis_name is None:
        return jax.random.split(key, num_chains)
    keys = jax.random.split(key, num_chains * jax.lax.axis_size(axis_name))
    return jax.lax.dynamic_slice_in_dim(keys, jax.lax.axis_index(axis_name) * num_chains, num_chains)


def _check_steps(num_steps, thin):
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if thin is not None and (int(thin) < 1 or num_steps % thin):
        raise ValueError(f"thin must be >= 1 and divide num_steps={num_steps}, got {thin}")
