"""Metropolis-adjusted Langevin (MALA; Roberts & Tweedie 1996), BlackJAX-shaped.

Proposal (same parametrisation as `langevin`: `step_size` multiplies the gradient, the noise
has variance 2 * step_size):
    y = x - step_size * grad E(x) + sqrt(2 * step_size) * z
accepted with probability min(1, exp(E(x) - E(y) + log q(x | y) - log q(y | x))), where
log q(y | x) = -|y - x + step_size * grad E(x)|^2 / (4 * step_size) + const.
The state caches E and grad E at the position, so each step costs one gradient evaluation.
"""

from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ebm_jax.samplers import proposal
from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.types import ArrayTree, EnergyFn, SamplingAlgorithm, check


class MALAState(NamedTuple):
    position: ArrayTree
    energy: jax.Array  # E(position), []
    energy_grad: ArrayTree  # grad E(position), like position


class MALAInfo(NamedTuple):
    acceptance_rate: jax.Array  # min(1, exp(log ratio)), []
    is_accepted: jax.Array  # bool []


def init(position: ArrayTree, energy_fn: EnergyFn) -> MALAState:
    energy, grad = jax.value_and_grad(energy_fn)(position)
    return MALAState(position, energy, grad)


def build_kernel() -> Callable:
    """Returns `kernel(rng_key, state, energy_fn, step_size) -> (state, info)`."""

    def kernel(rng_key, state: MALAState, energy_fn: EnergyFn, step_size) -> Tuple[MALAState, MALAInfo]:
        key_noise, key_accept = jax.random.split(rng_key)
        noise = proposal.normal_like(key_noise, state.position)
        y = jax.tree.map(lambda x, g, z: x - step_size * g + jnp.sqrt(2 * step_size) * z,
                         state.position, state.energy_grad, noise)
        energy_y, grad_y = jax.value_and_grad(energy_fn)(y)
        log_q_forward = _log_q(y, state.position, state.energy_grad, step_size)
        log_q_backward = _log_q(state.position, y, grad_y, step_size)
        log_ratio = state.energy - energy_y + log_q_backward - log_q_forward
        proposed = MALAState(y, energy_y, grad_y)
        new_state, accepted, prob = proposal.metropolis(key_accept, log_ratio, proposed, state)
        return new_state, MALAInfo(prob, accepted)

    return kernel


def mala(energy_fn: EnergyFn, step_size: float) -> SamplingAlgorithm:
    """Convenience `(init, step)` pair."""
    _check_step_size(step_size)
    kernel = build_kernel()
    return SamplingAlgorithm(lambda x: init(x, energy_fn), lambda k, s: kernel(k, s, energy_fn, step_size))


def spec(num_steps: int, step_size: float, chain_group: Optional[int] = None) -> SamplerSpec:
    """`num_steps` MALA steps of `step_size`, for `samplers.sample` and the training objectives."""
    _check_step_size(step_size)
    check(int(num_steps) >= 1, f"num_steps must be >= 1, got {num_steps}")
    return SamplerSpec(init, build_kernel(), dict(step_size=step_size), int(num_steps), chain_group)


def _check_step_size(step_size):
    check(lambda: step_size > 0, f"step_size must be > 0, got {step_size}")


def _log_q(to, frm, grad_frm, step_size):
    """log q(to | from) up to a constant."""
    sq = sum(jnp.sum(jnp.square(t - f + step_size * g))
             for t, f, g in zip(jax.tree.leaves(to), jax.tree.leaves(frm), jax.tree.leaves(grad_frm)))
    return -sq / (4 * step_size)
