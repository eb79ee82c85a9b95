"""The leapfrog (velocity Verlet) integrator for Hamiltonian dynamics.

H(x, p) = E(x) + K(p), K(p) = 0.5 * sum(p^2 * inverse_mass) (a diagonal mass matrix).
One step of size eps:  p <- p - eps/2 grad E(x);  x <- x + eps * inverse_mass * p;
p <- p - eps/2 grad E(x). It is time-reversible and volume-preserving, and its energy error
over a fixed time is O(eps^2).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ebm_jax.types import ArrayTree, EnergyFn


class IntegratorState(NamedTuple):
    position: ArrayTree
    momentum: ArrayTree
    energy: jax.Array
    energy_grad: ArrayTree


def kinetic_energy(momentum, inverse_mass=None) -> jax.Array:
    """0.5 * sum(p^2 * inverse_mass); `inverse_mass` None means identity, else a PyTree like p
    (or a scalar)."""
    inverse_mass = broadcast_inverse_mass(inverse_mass, momentum)
    return 0.5 * sum(jnp.sum(jnp.square(p) * m)
                     for p, m in zip(jax.tree.leaves(momentum), jax.tree.leaves(inverse_mass)))


def leapfrog_step(state: IntegratorState, energy_fn: EnergyFn, step_size, inverse_mass=None) -> IntegratorState:
    inverse_mass = broadcast_inverse_mass(inverse_mass, state.momentum)
    half = jax.tree.map(lambda p, g: p - 0.5 * step_size * g, state.momentum, state.energy_grad)
    position = jax.tree.map(lambda x, p, m: x + step_size * m * p, state.position, half, inverse_mass)
    energy, grad = jax.value_and_grad(energy_fn)(position)
    momentum = jax.tree.map(lambda p, g: p - 0.5 * step_size * g, half, grad)
    return IntegratorState(position, momentum, energy, grad)


def leapfrog(state: IntegratorState, energy_fn: EnergyFn, step_size, num_steps, inverse_mass=None) -> IntegratorState:
    """`num_steps` leapfrog steps (a `fori_loop`; `num_steps` may be traced)."""
    return jax.lax.fori_loop(0, num_steps, lambda _, s: leapfrog_step(s, energy_fn, step_size, inverse_mass), state)


def broadcast_inverse_mass(inverse_mass, like):
    """None -> ones, a scalar -> that scalar per leaf, else `inverse_mass` (a PyTree like `like`)."""
    if inverse_mass is None:
        inverse_mass = 1.0
    if isinstance(inverse_mass, (int, float)) or getattr(inverse_mass, "ndim", None) == 0:
        return jax.tree.map(lambda _: inverse_mass, like)
    return inverse_mass
