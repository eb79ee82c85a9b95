"""Replica exchange / parallel tempering (Swendsen & Wang 1986; Geyer 1991).

K replicas target p_k(x) ∝ exp(-beta_k E(x)) with 1 = beta_0 > beta_1 > ... > beta_{K-1} > 0.
Each step: (1) every replica takes one step of any kernel of the common contract on its
tempered energy beta_k E (vmapped over replicas); (2) neighbours swap positions, pairs
(0,1), (2,3), ... on even steps and (1,2), (3,4), ... on odd steps, each pair accepted with
probability min(1, exp((beta_k - beta_{k+1}) (E(x_k) - E(x_{k+1})))).
Samples of the target are the positions of replica 0.

Inner states that cache `energy` / `energy_grad` (MALA, HMC) hold them for beta_k E; a swap moves
a state to another temperature, so those fields are rescaled by beta_new / beta_old (no extra
gradient evaluation). For position-only states (Langevin) E is evaluated for the swap test.
"""

from typing import Callable, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp

from ebm_jax import compose
from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.types import ArrayTree, EnergyFn, check

_CACHED = ("energy", "energy_grad")


class TemperingState(NamedTuple):
    replicas: ArrayTree  # the inner kernel's state, stacked over replicas: leading axis K
    step: jax.Array  # int32 [], picks even or odd pairs


class TemperingInfo(NamedTuple):
    inner: ArrayTree  # the inner kernel's info, `[K, ...]`
    swap_proposed: jax.Array  # bool [K-1]: pair (k, k+1) tried this step
    swap_acceptance: jax.Array  # [K-1] acceptance probability (0 where not tried)
    swap_accepted: jax.Array  # bool [K-1]


def geometric_betas(num_replicas: int, min_beta: float) -> jax.Array:
    """1 = beta_0 > ... > beta_{K-1} = min_beta, geometrically spaced, `[K]`."""
    if num_replicas < 2 or not 0 < min_beta < 1:
        raise ValueError(f"need num_replicas >= 2 and 0 < min_beta < 1, got {num_replicas}, {min_beta}")
    return jnp.geomspace(1.0, min_beta, num_replicas)


def swap_log_acceptance(betas: jax.Array, energies: jax.Array) -> jax.Array:
    """log of the swap ratio of each neighbour pair, `[K-1]`: (b_k - b_{k+1}) (E_k - E_{k+1})."""
    return (betas[:-1] - betas[1:]) * (energies[:-1] - energies[1:])


def init(positions: ArrayTree, energy_fn: EnergyFn, betas: jax.Array, inner_init: Callable, step=0) -> TemperingState:
    """`positions` with a leading replica axis K (one start per temperature); `step` sets which
    pairs swap first (even: (0, 1), (2, 3), ...), so chains restarted from their positions (the
    persistent chains of training) keep alternating."""
    replicas = jax.vmap(lambda x, b: inner_init(x, _tempered(energy_fn, b)))(positions, betas)
    return TemperingState(replicas, jnp.asarray(step, jnp.int32))


def build_kernel(inner_kernel: Callable) -> Callable:
    """Returns `kernel(rng_key, state, energy_fn, betas, per_replica=None, **shared_params)`:
    `per_replica` maps parameter names to `[K]` arrays (e.g. one step size per temperature);
    `shared_params` go to every replica unchanged."""

    def kernel(rng_key, state: TemperingState, energy_fn: EnergyFn, betas, per_replica: Optional[Dict] = None,
               **shared_params):
        num_replicas = betas.shape[0]
        key_inner, key_swap = jax.random.split(rng_key)
        keys = jax.random.split(key_inner, num_replicas)
        per_replica = per_replica or {}

        def move(key, replica, beta, params):
            return inner_kernel(key, replica, _tempered(energy_fn, beta), **params, **shared_params)

        replicas, inner_info = jax.vmap(move)(keys, state.replicas, betas, per_replica)

        if hasattr(replicas, "energy"):
            energies = replicas.energy / betas
        else:
            energies = jax.vmap(energy_fn)(replicas.position)
        log_ratio = swap_log_acceptance(betas, energies)
        pair = jnp.arange(num_replicas - 1)
        proposed = (pair % 2) == (state.step % 2)
        uniforms = jax.random.uniform(key_swap, (num_replicas - 1,))
        accepted = proposed & (jnp.log(uniforms) < log_ratio)
        acceptance = jnp.where(proposed, jnp.exp(jnp.minimum(log_ratio, 0.0)), 0.0)

        # Replica i takes the state of i+1 (pair (i, i+1) swapped) or of i-1 (pair (i-1, i)).
        take_up = jnp.concatenate([accepted, jnp.zeros((1,), bool)])
        take_down = jnp.concatenate([jnp.zeros((1,), bool), accepted])
        source = jnp.arange(num_replicas) + take_up.astype(jnp.int32) - take_down.astype(jnp.int32)
        swapped = jax.tree.map(lambda a: a[source], replicas)
        swapped = _rescale(swapped, betas / betas[source])

        info = TemperingInfo(inner_info, proposed, acceptance, accepted)
        return TemperingState(swapped, state.step + 1), info

    return kernel


def spec(inner: SamplerSpec, betas, num_steps: Optional[int] = None, step=0) -> SamplerSpec:
    """Replica exchange around the sampler `inner` at inverse temperatures `betas [K]`, as a
    `SamplerSpec`: a chain's position is `[K, ...]` (one per temperature), its samples of the
    target are `final.replicas.position[:, 0]`. `num_steps` defaults to `inner.num_steps`; `step`
    as in `init`."""
    betas = jnp.asarray(betas)
    check(betas.ndim == 1 and betas.shape[0] >= 2, f"betas must be [K] with K >= 2, got shape {betas.shape}")
    num_steps = inner.num_steps if num_steps is None else int(num_steps)
    check(num_steps >= 1, f"num_steps must be >= 1, got {num_steps}")
    return SamplerSpec(lambda x, energy_fn: init(x, energy_fn, betas, inner.init, step), build_kernel(inner.kernel),
                       dict(inner.params, betas=betas), num_steps, inner.chain_group)


def _tempered(energy_fn, beta):
    """beta E: the energy at temperature 1 / beta."""
    return compose.temper(energy_fn, 1.0 / beta)


def _rescale(replicas, factor):
    """Multiplies the cached tempered energy / gradient of each replica by `factor` `[K]`."""
    if not hasattr(replicas, "_fields"):
        return replicas
    updates = {}
    for name in _CACHED:
        if name in replicas._fields:
            updates[name] = jax.tree.map(
                lambda a: a * factor.reshape(-1, *([1] * (a.ndim - 1))).astype(a.dtype), getattr(replicas, name))
    return replicas._replace(**updates)
