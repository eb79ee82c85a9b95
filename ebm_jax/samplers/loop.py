"""The `lax.scan` driver shared by every sampler.

`run_chain` advances ONE chain `num_steps` times; `run_chains` vmaps it over a leading chain
axis (the vmap sits inside the scan body, so XLA sees one batched energy evaluation per step).
Keys are pre-split per step: step i uses `keys[i]`, and chain c uses `split(keys[i])[c]`.

Draws made ahead (`draw=`): a kernel whose random numbers depend only on its key and the
state's shapes can be split into `draw(key, state) -> draws` and `move(draws, state)`
(`langevin.draw` / `langevin.build_move`). Given `draw`, the driver makes the draws of a block
of steps (every chain) in one vectorised pass before running those steps, with the keys the
steps would get, so the numbers are those of `move(draw(key, state), state)` step by step (to
float rounding: XLA may fuse the arithmetic differently; 2e-7 after 20 tutorial steps).
Why: on XLA:CPU JAX lowers each threefry hash as a 5-iteration while loop; inside a scan body
that is three such loops per Langevin step (chain keys, leaf keys, normal bits), some 500 extra
small ops per step, and the normal's inverse-erf is recomputed by each of its two consumers.
Made a block ahead (about a third of the ops per step), the tutorial's 60-step sampler took
0.81-0.94 of the time on one core and 0.93 on two (paired medians; `experiments/benchmarks/`
README, seventh session); the gain is mostly per-op dispatch, so it grows with the machine's
load. A block is the largest divisor of the steps between snapshots within `_DRAW_BLOCK_STEPS`
steps and `_DRAW_BLOCK_BYTES` of draws, so memory stays bounded for long runs and many chains.

Chain groups (`run_chains(..., chain_group=g)`): the chains run g at a time (`lax.map` over
groups, each running every step), each chain with the key it gets when all run at once, so the
numbers are the same. Why: on a CPU a step's activations for many chains outgrow the core's
cache; with the tutorial CNN on 2 devices, groups of 64 images per device gave 1.19x the samples
per second at 512 chains and 1.28x at 1,024 (paired rounds; `experiments/benchmarks/` README,
eighth session). On a GPU, where one wide batch is what keeps the device busy, leave it None.
"""

from typing import Callable, Optional, Tuple

import jax
import numpy as np

from ebm_jax.types import ArrayTree

_DRAW_BLOCK_STEPS = 16
_DRAW_BLOCK_BYTES = 16 * 2**20


def run_chain(
    rng_key: jax.Array,
    step: Callable,
    initial_state,
    num_steps: int,
    thin: Optional[int] = None,
    draw: Optional[Callable] = None,
) -> Tuple[object, Optional[ArrayTree], ArrayTree]:
    """Runs `state, info = step(key, state)` for `num_steps` steps.

    Returns `(final_state, trace, infos)`: `trace` holds the state after steps
    thin, 2*thin, ..., num_steps (`[num_steps // thin, ...]`), `None` when `thin` is None;
    `infos` stacks every step's info (`[num_steps, ...]`).

    draw: `draw(key, state) -> draws`; when given, `step` is called as `step(draws, state)` with
    `draws = draw(key, state)` for the step's key, made a block of steps ahead (module docstring).
    """
    _check_steps(num_steps, thin)
    keys = jax.random.split(rng_key, num_steps)
    interval = num_steps if thin is None else thin
    advance = _advance_fn(step, draw, initial_state, interval)
    if thin is None:
        final, infos = advance(initial_state, keys)
        return final, None, infos

    # Outer scan over snapshots, each advancing the `thin` steps between them.
    def outer(state, block_keys):
        state, infos = advance(state, block_keys)
        return state, (state, infos)

    keys = keys.reshape(num_steps // thin, thin, *keys.shape[1:])
    final, (trace, infos) = jax.lax.scan(outer, initial_state, keys)
    return final, trace, _merge_leading(infos)


def run_chains(
    rng_key: jax.Array,
    step: Callable,
    initial_states,
    num_steps: int,
    thin: Optional[int] = None,
    axis_name: Optional[str] = None,
    draw: Optional[Callable] = None,
    chain_group: Optional[int] = None,
):
    """`run_chain` over a leading chain axis of `initial_states`.

    The trace is `[num_steps // thin, num_chains, ...]`, infos `[num_steps, num_chains, ...]`.
    `axis_name`: inside `jax.shard_map` over that mesh axis, where each device holds its slice
    of the chains, chain c of device d takes the key that chain `d * num_chains + c` takes
    unsharded, so the sharded run draws the same numbers as one device.
    `draw`: per chain, as in `run_chain`; chain c's draws come from chain c's key.
    `chain_group`: run the chains in groups of at most this many (the largest divisor of the
    number of chains, per device under `shard_map`), one group after another, each for all
    `num_steps` steps; every chain keeps its key, so the numbers are the same. On a CPU this
    keeps a group's activations in cache (module docstring); None: all chains at once.
    """
    num_chains = jax.tree.leaves(initial_states)[0].shape[0]
    group = _group_size(num_chains, chain_group)
    if group == num_chains:
        return _run_group(rng_key, step, initial_states, num_steps, thin, draw,
                          lambda key: _chain_keys(key, num_chains, axis_name))

    def one_group(args):
        index, states = args
        keys = lambda key: jax.lax.dynamic_slice_in_dim(_chain_keys(key, num_chains, axis_name), index * group, group)
        return _run_group(rng_key, step, states, num_steps, thin, draw, keys)

    groups = jax.tree.map(lambda a: a.reshape(num_chains // group, group, *a.shape[1:]), initial_states)
    final, trace, infos = jax.lax.map(one_group, (np.arange(num_chains // group), groups))
    # [groups, group, ...] -> [chains, ...]; [groups, steps, group, ...] -> [steps, chains, ...]
    by_step = lambda a: a.swapaxes(0, 1).reshape(a.shape[1], num_chains, *a.shape[3:])
    return _merge_leading(final), jax.tree.map(by_step, trace), jax.tree.map(by_step, infos)


def _run_group(rng_key, step, states, num_steps, thin, draw, chain_keys):
    if draw is None:
        batched_step = lambda key, states: jax.vmap(step)(chain_keys(key), states)
        return run_chain(rng_key, batched_step, states, num_steps, thin)
    batched_draw = lambda key, states: jax.vmap(draw)(chain_keys(key), states)
    return run_chain(rng_key, jax.vmap(step), states, num_steps, thin, batched_draw)


def _group_size(num_chains, chain_group):
    """The largest divisor of `num_chains` that is at most `chain_group` (all chains if None)."""
    if chain_group is None or chain_group >= num_chains:
        return num_chains
    if int(chain_group) < 1:
        raise ValueError(f"chain_group must be >= 1 or None, got {chain_group}")
    return max(d for d in range(1, int(chain_group) + 1) if num_chains % d == 0)


def _advance_fn(step, draw, state, interval):
    """`advance(state, keys [interval]) -> (state, infos [interval, ...])`."""
    if draw is None:
        return lambda state, keys: jax.lax.scan(lambda s, key: step(key, s), state, keys)

    block = _draw_block(draw, state, interval)

    def run_block(state, block_keys):
        draws = jax.vmap(draw, in_axes=(0, None))(block_keys, state)
        return jax.lax.scan(lambda s, d: step(d, s), state, draws)

    def advance(state, keys):
        state, infos = jax.lax.scan(run_block, state, keys.reshape(interval // block, block, *keys.shape[1:]))
        return state, _merge_leading(infos)

    return advance


def _draw_block(draw, state, interval):
    """The largest divisor of `interval` within `_DRAW_BLOCK_STEPS` steps and `_DRAW_BLOCK_BYTES`."""
    shapes = jax.eval_shape(draw, jax.random.key(0), state)
    step_bytes = sum(np.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(shapes))
    limit = max(1, min(_DRAW_BLOCK_STEPS, _DRAW_BLOCK_BYTES // max(int(step_bytes), 1)))
    return max(d for d in range(1, min(limit, interval) + 1) if interval % d == 0)


def _merge_leading(tree):
    return jax.tree.map(lambda a: a.reshape(a.shape[0] * a.shape[1], *a.shape[2:]), tree)


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
