"""Block Gibbs sampling for energies with one layer of binary latent units (RBMs), BlackJAX-shaped.

The target is the joint p(v, h) ∝ exp(-E(v, h)) of an energy with latent units, called as
`energy_fn(v, h)` (the library's convention: `energy_fn(v)` alone is the free energy, h summed
out; `energies.rbm`). One step updates the two blocks in turn:

    h ~ p(h | v)        then        v ~ p(v | h)

The conditionals are read off the joint energy by automatic differentiation, which is exact for
every bipartite energy (no interactions inside a block) and so for an RBM, a tempered RBM
`compose.temper(E, T)` and the AIS path `compose.interpolate(E_0, E_1, beta)` alike:
  binary units      E is affine in each unit given the other block, so
                    p(u_j = 1 | rest) = sigmoid(-dE/du_j), the derivative taken anywhere (at 0)
  Gaussian units    E is a diagonal quadratic in the block, so with g(u) = dE/du the precision is
                    g(1) - g(0) and the mean -g(0) / precision (visible="gaussian")
The state keeps the joint energy E(v, h) of its (v, h), which `tempering` uses for its swaps
(replica exchange on the joint, as for RBMs in Desjardins et al. 2010); it costs no extra
evaluation, since E is affine (quadratic) in v and its value and gradient at v = 0 are at hand.

As a chain on v alone (h is drawn afresh from v at every step), the kernel leaves the free-energy
marginal p(v) ∝ exp(-F(v)) invariant; `free_energy(energy_fn, num_hidden)` is that F, obtained
from the joint energy by summing the binary units out in closed form.
"""

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.types import EnergyFn, SamplingAlgorithm, check

VISIBLE_UNITS = ("bernoulli", "gaussian")


class GibbsState(NamedTuple):
    position: jax.Array  # v, `[V]`
    hidden: jax.Array  # h, `[H]`, the latent draw that produced `position`
    energy: jax.Array  # joint E(v, h), []


class GibbsInfo(NamedTuple):
    change_rate: jax.Array  # mean |v_new - v| over the visible units, []


def init(position: jax.Array, energy_fn: EnergyFn, num_hidden: int) -> GibbsState:
    """A state at `position` with h = 0 (the first step draws h from v; `h` is never read)."""
    hidden = jnp.zeros((int(num_hidden),), position.dtype)
    return GibbsState(position, hidden, energy_fn(position, hidden))


def build_kernel(visible: str = "bernoulli") -> Callable:
    """Returns `kernel(rng_key, state, energy_fn) -> (state, info)` for `energy_fn(v, h)` with
    binary h and `visible` units ("bernoulli" or "gaussian")."""
    check(visible in VISIBLE_UNITS, f"visible must be one of {VISIBLE_UNITS}, got {visible!r}")

    def kernel(rng_key, state: GibbsState, energy_fn: EnergyFn):
        key_h, key_v = jax.random.split(rng_key)
        v = state.position
        h_logits = -jax.grad(energy_fn, argnums=1)(v, jnp.zeros_like(state.hidden))
        h = jax.random.bernoulli(key_h, jax.nn.sigmoid(h_logits)).astype(v.dtype)

        e0, g0 = jax.value_and_grad(energy_fn)(jnp.zeros_like(v), h)
        if visible == "bernoulli":
            new_v = jax.random.bernoulli(key_v, jax.nn.sigmoid(-g0)).astype(v.dtype)
            energy = e0 + jnp.vdot(g0, new_v)
        else:
            precision = jax.grad(energy_fn)(jnp.ones_like(v), h) - g0
            mean = -g0 / precision
            new_v = mean + jax.random.normal(key_v, v.shape, v.dtype) / jnp.sqrt(precision)
            energy = e0 + jnp.vdot(g0, new_v) + 0.5 * jnp.vdot(precision, jnp.square(new_v))
        info = GibbsInfo(jnp.mean(jnp.abs(new_v - v)))
        return GibbsState(new_v, h, energy), info

    return kernel


def free_energy(energy_fn: EnergyFn, num_hidden: int) -> EnergyFn:
    """`v -> -log sum_h exp(-E(v, h))` over binary `h [num_hidden]`, for a joint energy with no
    hidden-hidden terms: E(v, 0) - sum_j softplus(-dE/dh_j (v, 0))."""

    def marginal(v):
        zeros = jnp.zeros((int(num_hidden),), v.dtype)
        energy, grad_h = jax.value_and_grad(energy_fn, argnums=1)(v, zeros)
        return energy - jnp.sum(jax.nn.softplus(-grad_h))

    return marginal


def gibbs(energy_fn: EnergyFn, num_hidden: int, visible: str = "bernoulli") -> SamplingAlgorithm:
    """Convenience `(init, step)` pair for the joint `energy_fn(v, h)`."""
    kernel = build_kernel(visible)
    return SamplingAlgorithm(lambda v: init(v, energy_fn, num_hidden), lambda k, s: kernel(k, s, energy_fn))


def spec(num_steps: int, num_hidden: int, visible: str = "bernoulli", chain_group: Optional[int] = None) -> SamplerSpec:
    """`num_steps` block-Gibbs sweeps (h then v) with `num_hidden` binary latent units, for
    `samplers.sample` and the training objectives (CD-k = `spec(k, H)` from the data)."""
    check(int(num_steps) >= 1, f"num_steps must be >= 1, got {num_steps}")
    check(int(num_hidden) >= 1, f"num_hidden must be >= 1, got {num_hidden}")
    return SamplerSpec(lambda v, energy_fn: init(v, energy_fn, num_hidden), build_kernel(visible), {},
                       int(num_steps), chain_group)
