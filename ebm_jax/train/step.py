"""`make_train_step`: one pure, jitted `(state, batch) -> (state, metrics)` for any `Objective`.

Per step t:
  key             fold_in(state.rng_key, t); the loss draws from fold_in(key, LOSS_STREAM)
  model_state     optional update of non-trained collections (the ResNet's spectral-norm power
                  iteration), once per step, before anything reads the energy
  prepared        objective.prepare(key, ...) with the params frozen (MCMC, noise draws), the
                  objective's state updated
  loss, grads     objective.loss differentiated w.r.t. {"energy": model params, "objective": ...}
  params          optimizer update; metrics = the objective's, plus `grad_norm`

A batch is an array `[B, ...]` or a labelled `{"x", "y"}` dict (`ebm_jax.types`); the objective
reads it. Sharding: given a `jax.sharding.Mesh` with a `data` axis (`ebm_jax.parallel.data_mesh`),
the batch (every leaf) is split over it; params, model and optimizer state and the objective's state (the replay
buffer, persistent chains) are replicated. Samplers run their chains under `shard_map`, each
device on its slice with the keys those chains get on one device (`samplers.sample`); the rest
is partitioned by XLA (GSPMD), the gradient's mean over the batch an all-reduce. So a sharded
step matches one device up to float reassociation. The mesh may span several processes
(`parallel.initialize`): each then passes the global batch built from its own rows
(`parallel.global_batch`) and a state placed by `shard_state`.
"""

from typing import Callable, Dict, Optional, Tuple

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ebm_jax.parallel import DATA_AXIS, check_data_mesh, host_local
from ebm_jax.train.objectives import Objective
from ebm_jax.train.state import TrainState
from ebm_jax.types import examples

LOSS_STREAM = 0x6C6F7373  # fold_in data for the loss's key: a stream apart from the prepare's splits


def energy_function(apply_fn: Callable, params, model_state) -> Callable:
    """The batched energy `(x, *cond) -> [B]` of `params["energy"]` with `model_state` bound."""
    variables = {"params": params["energy"], **model_state}
    return lambda x, *cond: apply_fn(variables, x, *cond)


def make_train_step(
    apply_fn: Callable,
    objective: Objective,
    optimizer: optax.GradientTransformation,
    *,
    mesh: Optional[Mesh] = None,
    update_model_state: Optional[Callable] = None,
    learning_rate_scale: float = 1.0,
) -> Callable[[TrainState, jax.Array], Tuple[TrainState, Dict[str, jax.Array]]]:
    """Builds the train step.

    Args:
      apply_fn: the model's `apply(variables, x [B, ...], *cond) -> [B]` energies.
      objective: what to minimise and where its samples come from (`train.objectives`).
      optimizer: an optax transformation over the state's params.
      mesh: optional `Mesh` with a `data` axis: the batch (its size a multiple of the mesh's)
        and the samplers' chains are split over it (module docstring); place the state with
        `shard_state`.
      update_model_state: optional `(variables, batch) -> model_state`, run once per step (e.g.
        `energies.spectral_update(model)`).
      learning_rate_scale: multiplies the optimizer's updates, so the learning rate of SGD or
        Adam (what `fit`'s `Rollback` lowers; the optimizer state keeps its structure).

    Returns:
      `train_step(state, batch) -> (state, metrics)`, jitted once with the state donated;
      batches must keep one shape.
    """
    constrain = _batch_constraint(mesh)

    def train_step(state: TrainState, batch: jax.Array):
        key = jax.random.fold_in(state.rng_key, state.step)
        batch = constrain(batch)
        model_state = state.model_state
        if update_model_state is not None:
            model_state = update_model_state({"params": state.params["energy"], **model_state}, examples(batch))
        frozen = energy_function(apply_fn, jax.lax.stop_gradient(state.params), model_state)
        prepared, objective_state, prepare_metrics = objective.prepare(key, frozen, state.objective_state, batch, mesh)

        def loss_fn(params):
            batch_energy_fn = energy_function(apply_fn, params, model_state)
            return objective.loss(jax.random.fold_in(key, LOSS_STREAM), batch_energy_fn, params["objective"],
                                  prepared, batch)

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        if learning_rate_scale != 1.0:
            updates = jax.tree.map(lambda u: learning_rate_scale * u, updates)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, **prepare_metrics, grad_norm=optax.tree.norm(grads))
        new_state = TrainState(state.step + 1, params, model_state, opt_state, objective_state, state.rng_key)
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
    return TrainState(*([replicated] * len(TrainState._fields))), split, replicated


def shard_state(state: TrainState, mesh: Mesh) -> TrainState:
    """Places a state on `mesh` as `make_train_step(..., mesh=mesh)` expects it. With several
    processes every process passes the same state (built from the same seed, or restored), and
    each places its own copy on its devices."""
    state_sharding, _, _ = train_shardings(mesh)
    return jax.tree.map(
        lambda sharding, subtree: jax.tree.map(lambda a: _place(a, sharding), subtree),
        state_sharding,
        state,
        is_leaf=lambda x: isinstance(x, NamedSharding),
    )


def _place(leaf, sharding: NamedSharding):
    """`leaf` replicated over `sharding`'s devices, those of other processes included."""
    if sharding.is_fully_addressable:
        return jax.device_put(leaf, sharding)
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_place(jax.random.key_data(leaf), sharding), impl=jax.random.key_impl(leaf))
    return jax.make_array_from_process_local_data(sharding, np.asarray(host_local(leaf)))


def _batch_constraint(mesh):
    if mesh is None:
        return lambda x: x
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    return lambda batch: jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, split), batch)
