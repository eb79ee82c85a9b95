"""Annealed importance sampling (Neal 2001): log Z of an energy, with its standard error.

Along the geometric path E_k = `compose.interpolate(E_0, E_1, beta_k)`, 0 = beta_0 < ... <
beta_K = 1, from a base E_0 with a known log Z_0 and exact samples x_0 ~ p_0, each chain does

    log w += E_{k-1}(x_{k-1}) - E_k(x_{k-1})      then      x_k ~ T_k(. | x_{k-1})

where T_k is any kernel of the common contract that leaves p_k invariant (Gibbs for RBMs,
MALA / HMC for continuous energies). Then Z_1 / Z_0 = E[w], and over n chains

    log Z_1 ≈ log Z_0 + log mean_i w_i,     std error ≈ sd(w) / (sqrt(n) mean(w))  (delta method),
    ESS = (sum_i w_i)^2 / sum_i w_i^2.

Being the log of an unbiased estimate, log Z is biased low by about half its variance.
The whole run is one `lax.scan` over the betas with the chains vmapped inside. Before each
transition the chain's state is rebuilt for E_k (`spec.init`), so kernels that cache the energy
and its gradient (MALA, HMC) see the current target; for Gibbs the rebuilt parts are unused and
compiled away.

For energies with latent units (RBMs: `energy_fn(v, h)` the joint, Gibbs on the joint path),
`marginal` maps a path energy to the energy of the chains' positions with the latent units
summed out (`lambda fn: gibbs.free_energy(fn, H)`): the weights are then those of Salakhutdinov
& Murray (2008), on p_k(v), which have a lower variance than weights on (v, h).
`schedule(num_betas)` spaces the betas as they did.
"""

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax import compose
from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.types import ArrayTree, EnergyFn, check

# Salakhutdinov & Murray (2008): beta in steps of 1e-3 on [0, 0.5], 1e-4 on [0.5, 0.9] and 1e-5 on
# [0.9, 1]: 500 + 4,000 + 10,000 = 14,500 intervals.
_SM_SEGMENTS = ((0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000))
SM_NUM_BETAS = 1 + sum(n for *_, n in _SM_SEGMENTS)


class AISResult(NamedTuple):
    log_z: jax.Array  # [] estimate of log Z_1
    std_error: jax.Array  # [] delta-method standard error of log_z
    ess: jax.Array  # [] effective sample size of the weights, in [1, chains]
    log_weights: jax.Array  # [chains] log w_i (log Z_0 not included)
    positions: ArrayTree  # [chains, ...] the chains' final positions (weighted samples of p_1)


def schedule(num_betas: int = SM_NUM_BETAS) -> np.ndarray:
    """`[num_betas]` betas from 0 to 1 spaced as Salakhutdinov & Murray's (2008) schedule:
    the intervals split 500 : 4,000 : 10,000 over [0, 0.5], [0.5, 0.9], [0.9, 1], each segment
    uniform. `schedule()` is theirs (14,501 betas, 14,500 steps)."""
    num_betas = int(num_betas)
    check(num_betas >= 4, f"num_betas must be >= 4, got {num_betas}")
    steps = num_betas - 1
    total = SM_NUM_BETAS - 1
    counts = [max(1, round(steps * n / total)) for *_, n in _SM_SEGMENTS[:2]]
    counts.append(steps - sum(counts))
    pieces = [np.linspace(lo, hi, n + 1)[:-1] for (lo, hi, _), n in zip(_SM_SEGMENTS, counts)]
    return np.concatenate(pieces + [np.ones(1)]).astype(np.float32)


def log_mean_exp(log_weights: jax.Array):
    """`(log mean_i w_i, its delta-method standard error, ESS)` from `log_weights [n]`, computed
    without overflow."""
    n = log_weights.shape[0]
    shift = jnp.max(log_weights)
    w = jnp.exp(log_weights - shift)
    mean = jnp.mean(w)
    std_error = jnp.std(w, ddof=1) / (jnp.sqrt(n) * mean)
    ess = jnp.square(jnp.sum(w)) / jnp.sum(jnp.square(w))
    return shift + jnp.log(mean), std_error, ess


def run(
    rng_key: jax.Array,
    spec: SamplerSpec,
    base_energy_fn: EnergyFn,
    energy_fn: EnergyFn,
    base_samples: ArrayTree,
    base_log_z,
    betas,
    marginal: Optional[Callable[[EnergyFn], EnergyFn]] = None,
) -> AISResult:
    """AIS from `base_energy_fn` to `energy_fn` (module docstring).

    Args:
      rng_key: a typed key.
      spec: the transition: `spec.init`, `spec.kernel` and `spec.params` are used
        (`spec.num_steps` transitions at each beta).
      base_energy_fn, energy_fn: E_0 and E_1 of one example (joint energies `(v, h)` with
        `marginal`).
      base_samples: `[chains, ...]` exact samples of p_0.
      base_log_z: log Z_0 (of the marginal when `marginal` is given).
      betas: `[K + 1]` increasing from 0 to 1 (`schedule`).
      marginal: optional map from a path energy to the energy of positions (module docstring).

    Returns:
      An `AISResult`.
    """
    betas = jnp.asarray(betas, jnp.float32)
    check(betas.ndim == 1 and betas.shape[0] >= 2, f"betas must be [K + 1] with K >= 1, got shape {betas.shape}")
    check(lambda: bool(betas[0] == 0) and bool(betas[-1] == 1) and bool(jnp.all(jnp.diff(betas) > 0)),
          "betas must increase strictly from 0 to 1")
    weight_energy = marginal or (lambda fn: fn)
    path = lambda beta: compose.interpolate(base_energy_fn, energy_fn, beta)
    num_chains = jax.tree.leaves(base_samples)[0].shape[0]

    def transition(key, position, beta):
        fn = path(beta)
        state = spec.init(position, fn)
        for k in jax.random.split(key, spec.num_steps):
            state, _ = spec.kernel(k, state, fn, **spec.params)
        return state.position

    def body(carry, inputs):
        positions, log_w = carry
        key, beta_prev, beta = inputs
        log_w = log_w + (jax.vmap(weight_energy(path(beta_prev)))(positions)
                         - jax.vmap(weight_energy(path(beta)))(positions))
        positions = jax.vmap(transition, in_axes=(0, 0, None))(jax.random.split(key, num_chains), positions, beta)
        return (positions, log_w), None

    keys = jax.random.split(rng_key, betas.shape[0] - 1)
    log_w0 = jnp.zeros((num_chains,), jnp.float32)
    (positions, log_w), _ = jax.lax.scan(body, (base_samples, log_w0), (keys, betas[:-1], betas[1:]))
    log_ratio, std_error, ess = log_mean_exp(log_w)
    return AISResult(base_log_z + log_ratio, std_error, ess, log_w, positions)
