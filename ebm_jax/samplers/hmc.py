"""Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011) with a diagonal mass matrix.

Each step: draw p ~ N(0, M) (M = 1 / inverse_mass), run `num_integration_steps` leapfrog steps,
accept with probability min(1, exp(-(H_new - H_old))). A step whose energy error exceeds
`divergence_threshold` (or is NaN) is flagged divergent (and rejected).
"""

from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ebm_jax.samplers import integrators, proposal
from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.types import ArrayTree, EnergyFn, SamplingAlgorithm, check


class HMCState(NamedTuple):
    position: ArrayTree
    energy: jax.Array
    energy_grad: ArrayTree


class HMCInfo(NamedTuple):
    acceptance_rate: jax.Array  # min(1, exp(-delta_H)), []
    is_accepted: jax.Array
    is_divergent: jax.Array
    energy_change: jax.Array  # H_new - H_old, []


def init(position: ArrayTree, energy_fn: EnergyFn) -> HMCState:
    energy, grad = jax.value_and_grad(energy_fn)(position)
    return HMCState(position, energy, grad)


def build_kernel(divergence_threshold: float = 1000.0) -> Callable:
    """Returns `kernel(rng_key, state, energy_fn, step_size, num_integration_steps,
    inverse_mass_matrix=None) -> (state, info)`; `inverse_mass_matrix` is a PyTree like the
    position (its diagonal) or a scalar; None = identity."""

    def kernel(rng_key, state: HMCState, energy_fn: EnergyFn, step_size, num_integration_steps,
               inverse_mass_matrix=None) -> Tuple[HMCState, HMCInfo]:
        key_momentum, key_accept = jax.random.split(rng_key)
        inverse_mass = integrators.broadcast_inverse_mass(inverse_mass_matrix, state.position)
        momentum = jax.tree.map(lambda z, m: z / jnp.sqrt(m), proposal.normal_like(key_momentum, state.position), inverse_mass)
        start = integrators.IntegratorState(state.position, momentum, state.energy, state.energy_grad)
        end = integrators.leapfrog(start, energy_fn, step_size, num_integration_steps, inverse_mass)
        delta = (end.energy + integrators.kinetic_energy(end.momentum, inverse_mass)
                 - state.energy - integrators.kinetic_energy(momentum, inverse_mass))
        delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
        divergent = delta > divergence_threshold
        proposed = HMCState(end.position, end.energy, end.energy_grad)
        new_state, accepted, prob = proposal.metropolis(key_accept, -delta, proposed, state)
        return new_state, HMCInfo(prob, accepted, divergent, delta)

    return kernel


def hmc(energy_fn: EnergyFn, step_size: float, num_integration_steps: int,
        inverse_mass_matrix=None, divergence_threshold: float = 1000.0) -> SamplingAlgorithm:
    """Convenience `(init, step)` pair."""
    _check_params(step_size, num_integration_steps)
    kernel = build_kernel(divergence_threshold)
    return SamplingAlgorithm(
        lambda x: init(x, energy_fn),
        lambda k, s: kernel(k, s, energy_fn, step_size, num_integration_steps, inverse_mass_matrix))


def spec(num_steps: int, step_size: float, num_integration_steps: int, inverse_mass_matrix=None,
         divergence_threshold: float = 1000.0, chain_group: Optional[int] = None) -> SamplerSpec:
    """`num_steps` HMC steps (each `num_integration_steps` leapfrog steps of `step_size`), for
    `samplers.sample` and the training objectives."""
    _check_params(step_size, num_integration_steps)
    check(int(num_steps) >= 1, f"num_steps must be >= 1, got {num_steps}")
    params = dict(step_size=step_size, num_integration_steps=num_integration_steps,
                  inverse_mass_matrix=inverse_mass_matrix)
    return SamplerSpec(init, build_kernel(divergence_threshold), params, int(num_steps), chain_group)


def _check_params(step_size, num_integration_steps):
    check(lambda: step_size > 0, f"step_size must be > 0, got {step_size}")
    check(lambda: num_integration_steps >= 1, f"num_integration_steps must be >= 1, got {num_integration_steps}")
