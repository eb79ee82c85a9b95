"""The one way to run chains: a sampler spec and the `lax.scan` runner under it.

    SamplerSpec(init, kernel, params, num_steps, chain_group=None)
        a sampler of the common contract (`init(position, energy_fn)`,
        `kernel(rng_key, state, energy_fn, **params) -> (state, info)`), its keyword parameters
        and how many steps to run; built by `langevin.spec`, `mala.spec`, `hmc.spec`
    sample(rng_key, spec, energy_fn, starts, *, thin=None, mesh=None)
        runs `spec.num_steps` steps of every chain from `starts [chains, ...]`; generation from
        noise is `sample(key, spec, energy_fn, uniform_starts(key0, n, shape, bounds))`
    run_chains(rng_key, step, states, num_steps, thin=None, ...)
        the scan underneath, for any `step(rng_key, state) -> (state, info)` (a
        `SamplingAlgorithm.step`) over a leading chain axis; `run_chain` for one chain

Keys are pre-split per step: step i uses `keys[i]`, and chain c uses `split(keys[i])[c]`. The
vmap over chains sits inside the scan body, so XLA sees one batched energy evaluation per step.
With `thin=k` the runner keeps the state and the info of every k-th step only
(`[num_steps // k, chains, ...]` each), so memory does not grow with the steps in between.

Two speed options of the runner, both giving the same numbers:
  draws made ahead   a kernel whose random numbers depend only on its key and the state's shapes
                     may expose its split form as attributes, `kernel.draw(rng_key, state)` and
                     `kernel.move(draws, state, energy_fn, **params)` (`langevin.build_kernel`
                     does); `sample` then makes a block of steps' draws in one vectorised pass
                     before running those steps (`run_chains(..., draw=)`), with the keys the
                     steps would get. A block is the largest divisor of the steps between
                     snapshots within `_DRAW_BLOCK_STEPS` steps and `_DRAW_BLOCK_BYTES` of draws.
  chain groups       `chain_group=g` runs the chains g at a time (`lax.map` over groups, each for
                     every step), each chain with its own key; it keeps a group's activations in
                     a CPU core's cache. On a GPU leave it None.
Both are measured in `experiments/benchmarks/README.md`.
"""

from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ebm_jax.parallel import DATA_AXIS, check_data_mesh
from ebm_jax.types import ArrayTree, EnergyFn

_DRAW_BLOCK_STEPS = 16
_DRAW_BLOCK_BYTES = 16 * 2**20


class SamplerSpec(NamedTuple):
    """A sampler and how long to run it.

    init: `init(position, energy_fn) -> state` for ONE chain.
    kernel: `kernel(rng_key, state, energy_fn, **params) -> (state, info)`; it may carry
        `kernel.draw` / `kernel.move` (its split form, module docstring).
    params: the kernel's keyword parameters (step size, ...), Python numbers or arrays.
    num_steps: steps per run (per train step when a training objective runs it).
    chain_group: optional; run the chains at most this many at a time (the same numbers).
    """

    init: Callable
    kernel: Callable
    params: dict
    num_steps: int
    chain_group: Optional[int] = None


def sample(
    rng_key: jax.Array,
    spec: SamplerSpec,
    energy_fn: EnergyFn,
    starts: ArrayTree,
    *,
    thin: Optional[int] = None,
    mesh: Optional[Mesh] = None,
    draw_ahead: bool = True,
):
    """Runs `spec.num_steps` steps of the chains that start at `starts` (leading chain axis).

    Args:
      rng_key: a typed key; the run's per-step and per-chain keys are split from it.
      spec: the sampler (`SamplerSpec`).
      energy_fn: ONE example -> scalar energy.
      starts: `[chains, ...]` positions (a PyTree with a leading chain axis).
      thin: keep the state and info of every `thin`-th step (must divide the steps); None: only
        the final state and every step's info.
      mesh: a `Mesh` with the axis `"data"`: each device runs its slice of the chains under
        `shard_map` (the chains must split evenly), every chain with the key it gets on one
        device, so the numbers are those of one device. Whatever `energy_fn` closes over is
        replicated.
      draw_ahead: use the kernel's split form when it has one (same numbers; faster on CPU).

    Returns:
      `(final_state, trace, infos)`: the chains' states after the last step `[chains, ...]`;
      the states after steps thin, 2 thin, ... `[num_steps // thin, chains, ...]` (None without
      `thin`); the infos of those steps (of every step without `thin`), `[steps, chains, ...]`.
    """
    _check_steps(spec.num_steps, thin)
    split = draw_ahead and hasattr(spec.kernel, "draw") and hasattr(spec.kernel, "move")
    if split:
        draw = spec.kernel.draw
        step = lambda draws, state: spec.kernel.move(draws, state, energy_fn, **spec.params)
    else:
        draw = None
        step = lambda key, state: spec.kernel(key, state, energy_fn, **spec.params)

    def run(key, starts, axis_name=None):
        states = jax.vmap(lambda x: spec.init(x, energy_fn))(starts)
        return run_chains(key, step, states, spec.num_steps, thin, axis_name=axis_name, draw=draw,
                          chain_group=spec.chain_group)

    if mesh is None:
        return run(rng_key, starts)
    check_data_mesh(mesh)
    chains, by_step = PartitionSpec(DATA_AXIS), PartitionSpec(None, DATA_AXIS)
    starts = jax.lax.with_sharding_constraint(starts, NamedSharding(mesh, chains))
    out_specs = (chains, None if thin is None else by_step, by_step)
    sharded = jax.shard_map(lambda key, x: _drop_none(run(key, x, DATA_AXIS)), mesh=mesh,
                            in_specs=(PartitionSpec(), chains), out_specs=_drop_none(out_specs))
    final, *rest = sharded(rng_key, starts)
    return (final, None, rest[0]) if thin is None else (final, *rest)


def uniform_starts(rng_key: jax.Array, num_chains: int, example_shape: Sequence[int],
                   bounds: Tuple[float, float] = (-1.0, 1.0), dtype=np.float32) -> jax.Array:
    """`[num_chains, *example_shape]` draws of Uniform(bounds): chain starts for generation from
    noise."""
    return jax.random.uniform(rng_key, (int(num_chains), *example_shape), dtype, minval=bounds[0], maxval=bounds[1])


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
    `infos` stacks the info of those steps (`[num_steps // thin, ...]`), of every step
    (`[num_steps, ...]`) when `thin` is None.

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
        return state, (state, jax.tree.map(lambda a: a[-1], infos))

    keys = keys.reshape(num_steps // thin, thin, *keys.shape[1:])
    final, (trace, infos) = jax.lax.scan(outer, initial_state, keys)
    return final, trace, infos


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

    The trace and infos are `[num_steps // thin, num_chains, ...]` (infos
    `[num_steps, num_chains, ...]` without `thin`).
    `axis_name`: inside `jax.shard_map` over that mesh axis, where each device holds its slice
    of the chains, chain c of device d takes the key that chain `d * num_chains + c` takes
    unsharded, so the sharded run draws the same numbers as one device.
    `draw`: per chain, as in `run_chain`; chain c's draws come from chain c's key.
    `chain_group`: run the chains in groups of at most this many (the largest divisor of the
    number of chains, per device under `shard_map`), one group after another, each for all
    `num_steps` steps; every chain keeps its key, so the numbers are the same. None: all at once.
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


def _drop_none(tree):
    return tuple(x for x in tree if x is not None)
