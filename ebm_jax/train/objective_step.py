"""`make_objective_step`: one jitted `(state, batch) -> (state, metrics)` for any `Objective`.

Per step t:
  keys            fold_in(state.rng_key, t) -> key_sample, key_loss
  model_state     optional update of non-trained collections (the ResNet's spectral-norm power
                  iteration), once per step, before anything reads the energy
  negatives       objective.prepare with the params frozen (MCMC, noise draws), state updated
  loss, grads     objective.loss differentiated w.r.t. {"energy": model params, "objective": ...}
  params          optimizer update

The tutorial's MNIST run uses `make_train_step` (`ebm_jax.train.step`): the same replay-buffer
CD as `objectives.replay_cd` with its image sampler and data-axis sharding.
"""

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from ebm_jax.train.objectives import Objective


class ObjectiveTrainState(NamedTuple):
    step: jax.Array  # int32 []
    params: Any  # {"energy": the model's "params" collection, "objective": e.g. {"log_z": []}}
    model_state: Any  # the model's other collections, e.g. {"batch_stats": ...}; {} if none
    opt_state: optax.OptState
    objective_state: Any  # replay buffer / persistent chains / ()
    rng_key: jax.Array  # typed key; step t uses fold_in(rng_key, t)


def create_objective_state(
    rng_key: jax.Array, model, objective: Objective, optimizer: optax.GradientTransformation, batch: jax.Array
) -> ObjectiveTrainState:
    """Initialises the model on `batch[:1]` (with sigma = 1 if noise-conditional), the
    objective's params and state from `batch`, and the optimizer over both params."""
    batch = jnp.asarray(batch)
    key_params, key_objective, key_train = jax.random.split(rng_key, 3)
    cond = (jnp.ones((1,), batch.dtype),) if objective.noise_conditional else ()
    variables = dict(model.init(key_params, batch[:1], *cond))
    objective_params, objective_state = objective.init(key_objective, batch)
    params = {"energy": variables.pop("params"), "objective": objective_params}
    return ObjectiveTrainState(
        step=jnp.asarray(0, jnp.int32),
        params=params,
        model_state=variables,
        opt_state=optimizer.init(params),
        objective_state=objective_state,
        rng_key=key_train,
    )


def energy_function(apply_fn: Callable, params, model_state) -> Callable:
    """The batched energy `(x, *cond) -> [B]` of `params["energy"]` with `model_state` bound."""
    variables = {"params": params["energy"], **model_state}
    return lambda x, *cond: apply_fn(variables, x, *cond)


def make_objective_step(
    apply_fn: Callable,
    objective: Objective,
    optimizer: optax.GradientTransformation,
    *,
    update_model_state: Optional[Callable] = None,
) -> Callable:
    """`apply_fn(variables, x, *cond) -> [B]`; `update_model_state(variables, batch) -> model_state`
    (e.g. `energies.spectral_update(model)`) runs once per step when given."""

    def train_step(state: ObjectiveTrainState, batch: jax.Array):
        key = jax.random.fold_in(state.rng_key, state.step)
        key_sample, key_loss = jax.random.split(key)
        model_state = state.model_state
        if update_model_state is not None:
            model_state = update_model_state({"params": state.params["energy"], **model_state}, batch)
        frozen = energy_function(apply_fn, jax.lax.stop_gradient(state.params), model_state)
        negatives, objective_state = objective.prepare(key_sample, frozen, state.objective_state, batch)

        def loss_fn(params):
            energy_fn = energy_function(apply_fn, params, model_state)
            return objective.loss(key_loss, energy_fn, params["objective"], negatives, batch)

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
        new_state = ObjectiveTrainState(state.step + 1, params, model_state, opt_state, objective_state, state.rng_key)
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0)
