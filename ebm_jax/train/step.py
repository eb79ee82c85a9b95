"""`make_train_step`: one pure, jitted `(state, batch) -> (state, metrics)` for persistent CD.

Per step t (the UvA tutorial's `training_step`, functional):
  keys                 fold_in(state.rng_key, t) -> key_real, key_buffer, key_mcmc
  real   [B, ...]      clip(batch + real_noise * N(0, I), bounds)
  starts [B, ...]      replay buffer sample (a Binomial(B, reinit_prob) share is fresh noise)
  fake   [B, ...]      `num_mcmc_steps` sampler steps from `starts`, params held fixed
  buffer               fake pushed back (oldest dropped)
  loss                 contrastive_divergence(E(real), E(fake), alpha); optimizer update

Sharding: given a `jax.sharding.Mesh` with a `data` axis (`ebm_jax.parallel.data_mesh`), the
batch is split over it; params, optimizer state and the replay buffer are replicated. The
sampler loop runs under `shard_map`, each device on its slice of the chains with the keys those
chains get on one device (`parallel.shard_chains`); the rest is partitioned by XLA (GSPMD). So
the step matches one device up to float reassociation. On a CPU split into one device per core
(`parallel.split_cpu`) this is how a step uses every core (see `experiments/benchmarks/`).
"""

from typing import Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ebm_jax import buffers
from ebm_jax.losses import contrastive_divergence
from ebm_jax.parallel import DATA_AXIS, check_data_mesh
from ebm_jax.samplers import langevin
from ebm_jax.train.objectives import ChainSampler, run_sampler
from ebm_jax.train.state import TrainState


def tutorial_optimizer(
    steps_per_epoch: int,
    learning_rate: float = 1e-4,
    b1: float = 0.0,
    b2: float = 0.999,
    clip_norm: float = 0.1,
    decay_per_epoch: float = 0.97,
) -> optax.GradientTransformation:
    """Global-norm clipping then Adam with the learning rate times `decay_per_epoch` each epoch
    (the tutorial: clip 0.1, Adam(1e-4, betas=(0.0, 0.999)), StepLR(1, gamma=0.97))."""
    schedule = tutorial_schedule(steps_per_epoch, learning_rate, decay_per_epoch)
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(schedule, b1=b1, b2=b2))


def tutorial_schedule(steps_per_epoch: int, learning_rate: float = 1e-4, decay_per_epoch: float = 0.97):
    """step -> learning rate: `learning_rate * decay_per_epoch ** (step // steps_per_epoch)`."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    return optax.exponential_decay(
        learning_rate, transition_steps=steps_per_epoch, decay_rate=decay_per_epoch, staircase=True
    )


def make_train_step(
    apply_fn: Callable,
    optimizer: optax.GradientTransformation,
    *,
    sampler_init: Callable = langevin.init,
    sampler_kernel: Optional[Callable] = None,
    sampler_params: Optional[Dict] = None,
    sampler_draw: Optional[Callable] = None,
    sampler_chain_group: Optional[int] = None,
    num_mcmc_steps: int = 60,
    alpha: float = 0.1,
    real_noise: float = 0.005,
    reinit_prob: float = 0.05,
    bounds: Tuple[float, float] = (-1.0, 1.0),
    mesh: Optional[Mesh] = None,
) -> Callable[[TrainState, jax.Array], Tuple[TrainState, Dict[str, jax.Array]]]:
    """Builds the train step. `apply_fn(params, [B, ...]) -> [B]` energies.

    sampler_init / sampler_kernel / sampler_params: a sampler of the common contract
    (`init(position, energy_fn)`, `kernel(rng_key, state, energy_fn, **params)`) and its keyword
    parameters; the default is the tutorial's Langevin loop (`langevin.tutorial_params()`).
    sampler_draw: optional `draw(rng_key, state)`; then `sampler_kernel` is its move, taking the
    draws in place of the key (`ChainSampler.draw`). The default Langevin loop uses
    `langevin.draw` and `langevin.build_move`: the same numbers as its kernel, made ahead.
    sampler_chain_group: optional; each device's chains run this many at a time, with the same
    numbers (`ChainSampler.chain_group`: on a CPU, for batches well over 64 chains per device).
    The returned step is jitted once with the state donated; batches must keep one shape.
    """
    if sampler_kernel is None:
        sampler_kernel, sampler_draw = langevin.build_move("noise_first"), langevin.draw
        sampler_params = langevin.tutorial_params() if sampler_params is None else sampler_params
    sampler_params = dict(sampler_params or {})
    if "step_size" in sampler_params:
        keys = ("step_size", "noise_scale", "grad_clip", "bounds")
        langevin.check_params(**{k: sampler_params.get(k) for k in keys})
    if int(num_mcmc_steps) < 1:
        raise ValueError(f"num_mcmc_steps must be >= 1, got {num_mcmc_steps}")
    if not 0.0 <= reinit_prob <= 1.0:
        raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob}")
    if alpha < 0 or real_noise < 0:
        raise ValueError(f"alpha and real_noise must be >= 0, got {alpha}, {real_noise}")
    constrain = _batch_constraint(mesh)
    sampler = ChainSampler(sampler_init, sampler_kernel, sampler_params, int(num_mcmc_steps), sampler_draw,
                           sampler_chain_group)

    def train_step(state: TrainState, batch: jax.Array):
        key = jax.random.fold_in(state.rng_key, state.step)
        key_real, key_buffer, key_mcmc = jax.random.split(key, 3)
        batch = constrain(batch)
        noise = jax.random.normal(key_real, batch.shape, batch.dtype)
        real = jnp.clip(batch + real_noise * noise, *bounds)

        starts, is_fresh = buffers.sample(key_buffer, state.buffer, batch.shape[0], reinit_prob, bounds)
        starts = constrain(starts)
        frozen = jax.lax.stop_gradient(state.params)
        fake, infos = run_sampler(key_mcmc, sampler, lambda x: apply_fn(frozen, x), starts, mesh)
        # Clamped: a no-op for the bounded Langevin loop, keeps MALA / HMC samples in range.
        fake = jnp.clip(fake, *bounds)
        buffer = buffers.push(state.buffer, fake)

        def loss_fn(params):
            # Two calls rather than one on the concatenation: per-example energies are the same,
            # and on a mesh a concatenation of two split batches would be re-split (all-to-all).
            return contrastive_divergence(apply_fn(params, real), apply_fn(params, fake), alpha)

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(
            metrics,
            grad_norm=optax.tree.norm(grads),
            fresh_fraction=jnp.mean(is_fresh.astype(jnp.float32)),
        )
        if hasattr(infos, "acceptance_rate"):  # Metropolis-corrected samplers
            metrics["sampler_acceptance"] = jnp.mean(infos.acceptance_rate)
        new_state = TrainState(state.step + 1, params, opt_state, buffer, state.rng_key)
        return new_state, metrics

    if mesh is None:
        return jax.jit(train_step, donate_argnums=0)
    state_sharding, batch_sharding, replicated = train_shardings(mesh)
    return jax.jit(
        train_step,
        in_shardings=(state_sharding, batch_sharding),
        out_shardings=(state_sharding, replicated),
        donate_argnums=0,
    )


def train_shardings(mesh: Mesh):
    """`(state_sharding, batch_sharding, replicated)`: the batch split along the mesh's `data`
    axis, everything else replicated, the replay buffer included (each device holds all of it:
    drawing chain starts at random slots and writing the new samples back then need no more
    than one all-gather of the batch's samples). `state_sharding` is a TrainState prefix."""
    check_data_mesh(mesh)
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    state_sharding = TrainState(replicated, replicated, replicated, replicated, replicated)
    return state_sharding, split, replicated


def shard_state(state: TrainState, mesh: Mesh) -> TrainState:
    """Places a state on `mesh` as `make_train_step(..., mesh=mesh)` expects it."""
    state_sharding, _, _ = train_shardings(mesh)
    return jax.tree.map(
        lambda sharding, subtree: jax.tree.map(lambda a: jax.device_put(a, sharding), subtree),
        state_sharding,
        state,
        is_leaf=lambda x: isinstance(x, NamedSharding),
    )


def _batch_constraint(mesh):
    if mesh is None:
        return lambda x: x
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    return lambda x: jax.lax.with_sharding_constraint(x, split)
