"""The train state: everything that changes during training, as one PyTree of arrays.

Hyper-parameters never live here; `make_train_step` closes over them.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ebm_jax.train.objectives import Objective
from ebm_jax.types import examples


class TrainState(NamedTuple):
    step: jax.Array  # int32 [], number of train steps taken
    params: Any  # {"energy": the model's "params" collection, "objective": e.g. {"log_z": []}}
    model_state: Any  # the model's other collections, e.g. {"batch_stats": ...}; {} if none
    opt_state: optax.OptState
    objective_state: Any  # replay buffer / persistent chains / ()
    rng_key: jax.Array  # a typed key (`jax.random.key`); step t uses fold_in(rng_key, t)


def create_train_state(
    rng_key: jax.Array, model, objective: Objective, optimizer: optax.GradientTransformation, batch: jax.Array
) -> TrainState:
    """The state before the first step.

    Args:
      rng_key: a typed key, split into the model's, the objective's and the training key.
      model: a Flax module `[B, ...] -> [B]` (`(x, sigma [B]) -> [B]` for a noise-conditional
        objective), initialised on `batch[:1]` (with sigma = 1).
      objective: an `Objective`; its params and state are initialised from `batch`.
      optimizer: an optax transformation over `{"energy": ..., "objective": ...}`.
      batch: an example batch `[B, ...]` (or `{"x", "y"}` with labels, `ebm_jax.types`), the
        shape every step's batch will have; the objective's init gets it as it is.

    Returns:
      A `TrainState` at step 0.
    """
    batch = jax.tree.map(jnp.asarray, batch)
    x = examples(batch)
    key_params, key_objective, key_train = jax.random.split(rng_key, 3)
    cond = (jnp.ones((1,), x.dtype),) if objective.noise_conditional else ()
    variables = dict(model.init(key_params, x[:1], *cond))
    objective_params, objective_state = objective.init(key_objective, batch)
    params = {"energy": variables.pop("params"), "objective": objective_params}
    return TrainState(
        step=jnp.asarray(0, jnp.int32),
        params=params,
        model_state=variables,
        opt_state=optimizer.init(params),
        objective_state=objective_state,
        rng_key=key_train,
    )
