"""Step-size adaptation by dual averaging (Nesterov 2009; Hoffman & Gelman 2014, Algorithm 5).

Pure functions, usable inside a `lax.scan` warm-up:
    state = dual_averaging_init(initial_step_size)
    state = dual_averaging_update(state, acceptance_rate, target)   # once per warm-up step
    step_size = final_step_size(state)                               # the averaged iterate
`warmup` runs a vmapped set of chains through that loop with any MALA/HMC-like kernel.
Constants follow the paper: gamma = 0.05, t0 = 10, kappa = 0.75, mu = log(10 * eps0).
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class DualAveragingState(NamedTuple):
    log_step_size: jax.Array  # the iterate used for the next step
    log_step_size_avg: jax.Array  # the averaged iterate (the final answer)
    step: jax.Array  # t
    avg_error: jax.Array  # H-bar: running mean of (target - acceptance)
    mu: jax.Array


def dual_averaging_init(initial_step_size) -> DualAveragingState:
    log_eps = jnp.log(jnp.asarray(initial_step_size, jnp.float32))
    return DualAveragingState(log_eps, log_eps, jnp.asarray(0, jnp.int32), jnp.asarray(0.0), jnp.log(10.0) + log_eps)


def dual_averaging_update(state: DualAveragingState, acceptance_rate, target: float = 0.8,
                          gamma: float = 0.05, t0: float = 10.0, kappa: float = 0.75) -> DualAveragingState:
    t = state.step + 1
    tf = t.astype(jnp.float32)
    weight = 1.0 / (tf + t0)
    avg_error = (1 - weight) * state.avg_error + weight * (target - acceptance_rate)
    log_eps = state.mu - jnp.sqrt(tf) / gamma * avg_error
    eta = tf ** (-kappa)
    log_avg = eta * log_eps + (1 - eta) * state.log_step_size_avg
    return DualAveragingState(log_eps, log_avg, t, avg_error, state.mu)


def final_step_size(state: DualAveragingState) -> jax.Array:
    return jnp.exp(state.log_step_size_avg)


def warmup(rng_key, kernel: Callable, states, energy_fn, num_steps: int, initial_step_size: float,
           target: float = 0.8, **kernel_params):
    """Adapts one step size shared by a batch of chains (`states` has a leading chain axis):
    each warm-up step moves every chain with the current step size and feeds the chains' mean
    acceptance rate to dual averaging. Returns `(step_size, states)`; the states are the chains
    after warm-up (use them as starts)."""
    num_chains = jax.tree.leaves(states)[0].shape[0]

    def body(carry, key):
        states, da = carry
        step_size = jnp.exp(da.log_step_size)
        keys = jax.random.split(key, num_chains)
        states, info = jax.vmap(lambda k, s: kernel(k, s, energy_fn, step_size, **kernel_params))(keys, states)
        return (states, dual_averaging_update(da, jnp.mean(info.acceptance_rate), target)), None

    (states, da), _ = jax.lax.scan(body, (states, dual_averaging_init(initial_step_size)),
                                   jax.random.split(rng_key, num_steps))
    return final_step_size(da), states
