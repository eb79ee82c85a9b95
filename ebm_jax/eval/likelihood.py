"""Log-likelihoods of Bernoulli RBMs: the exact partition function, AIS, and the average log p(v).

    rbm_exact_log_z(params)                          log Z by enumerating the smaller layer
    rbm_ais(rng_key, params, num_chains, num_betas)  AIS (Salakhutdinov & Murray 2008) -> AISResult
    rbm_ais_log_z(...)                               the same, as (log_z, std_error)
    rbm_log_likelihood(params, data, log_z)          mean_v log p(v) = mean(-F(v)) - log Z, nats

`params` is `{"W": [V, H], "b": [V], "c": [H]}` (numpy or JAX, float32; a module's
`{"params": ...}` is accepted too).

Exact log Z: with the hidden layer enumerated, the visible units sum out in closed form,
log Z = logsumexp_h [c^T h + sum_i softplus(b_i + (W h)_i)] (and symmetrically over v when V < H),
2^min(V, H) terms taken in blocks of `_BLOCK`: practical up to about 25 units.

AIS: the base is the factorised Bernoulli with logits `base_logits` as an RBM with W = 0, c = 0:
the base-rate model of Salakhutdinov & Murray (the training data's pixel means,
`energies.rbm.base_rate_logits(data)`) or, when not given, the model's own factorised
approximation b + W sigmoid(c) (one mean-field pass from the hidden units' prior means), which
needs no data. (A uniform base, logits 0, is far from a trained RBM and needs far more betas.)
The transitions are block Gibbs on the joint path and the weights are taken on the free
energies (`samplers.ais`).
"""

import math
from functools import partial
from typing import Optional

import jax
import jax.numpy as jnp

from ebm_jax.energies import rbm
from ebm_jax.samplers import ais, gibbs
from ebm_jax.types import check

_BLOCK = 2**14
MAX_EXACT_UNITS = 30


def rbm_exact_log_z(params) -> jax.Array:
    """log Z of a Bernoulli RBM by enumeration of its smaller layer (at most `MAX_EXACT_UNITS`
    units), float32 `[]`."""
    params = rbm.as_params(params)
    W, b, c = params["W"], params["b"], params["c"]
    if W.shape[0] < W.shape[1]:  # enumerate v instead: the roles of (b, c) swap with W^T
        W, b, c = W.T, c, b
    num_enumerated = W.shape[1]
    check(num_enumerated <= MAX_EXACT_UNITS,
          f"exact log Z enumerates 2^{num_enumerated} states; at most {MAX_EXACT_UNITS} units supported")
    return _exact_log_z(W, b, c)


@jax.jit
def _exact_log_z(W, b, c):
    num = W.shape[1]
    total = 2**num
    block = min(total, _BLOCK)
    bits = jnp.arange(num, dtype=jnp.uint32)

    def block_log_sum(start):
        index = start + jnp.arange(block, dtype=jnp.uint32)
        h = ((index[:, None] >> bits) & 1).astype(jnp.float32)  # [block, H]
        terms = h @ c + jnp.sum(jax.nn.softplus(h @ W.T + b), -1)
        return jax.nn.logsumexp(terms)

    starts = jnp.arange(0, total, block, dtype=jnp.uint32)
    return jax.nn.logsumexp(jax.lax.map(block_log_sum, starts))


def rbm_ais(rng_key: jax.Array, params, num_chains: int = 100, num_betas: int = ais.SM_NUM_BETAS,
            base_logits: Optional[jax.Array] = None) -> ais.AISResult:
    """AIS estimate of a Bernoulli RBM's log Z (module docstring).

    Args:
      rng_key: a typed key.
      params: the RBM.
      num_chains: independent AIS runs (100 or more for a stated standard error).
      num_betas: betas on the path, spaced as `ais.schedule` (14,501 by default).
      base_logits: `[V]` logits of the base model (`rbm.base_rate_logits(train_data)`); None:
        b + W sigmoid(c).

    Returns:
      `ais.AISResult` (log_z, std_error, ess, log_weights, positions).
    """
    params = rbm.as_params(params)
    num_visible, num_hidden = params["W"].shape
    if base_logits is None:
        base_logits = params["b"] + params["W"] @ jax.nn.sigmoid(params["c"])
    base_logits = jnp.asarray(base_logits, jnp.float32)
    check(base_logits.shape == (num_visible,), f"base_logits must be [{num_visible}], got {base_logits.shape}")
    check(int(num_chains) >= 2, f"num_chains must be >= 2, got {num_chains}")
    return _rbm_ais(rng_key, params, base_logits, int(num_chains), int(num_betas))


@partial(jax.jit, static_argnums=(3, 4))
def _rbm_ais(rng_key, params, base_logits, num_chains, num_betas):
    num_visible, num_hidden = params["W"].shape
    base = {"W": jnp.zeros_like(params["W"]), "b": base_logits, "c": jnp.zeros_like(params["c"])}
    base_log_z = jnp.sum(jax.nn.softplus(base_logits)) + num_hidden * math.log(2.0)
    key_base, key_ais = jax.random.split(rng_key)
    starts = jax.random.bernoulli(key_base, jax.nn.sigmoid(base_logits), (num_chains, num_visible)).astype(jnp.float32)
    return ais.run(
        key_ais,
        gibbs.spec(1, num_hidden),
        lambda v, h: rbm.joint_energy(base, v, h),
        lambda v, h: rbm.joint_energy(params, v, h),
        starts,
        base_log_z,
        ais.schedule(num_betas),
        marginal=lambda fn: gibbs.free_energy(fn, num_hidden),
    )


def rbm_ais_log_z(rng_key: jax.Array, params, num_chains: int = 100, num_betas: int = ais.SM_NUM_BETAS,
                  base_logits: Optional[jax.Array] = None):
    """`(log_z, std_error)` of `rbm_ais` (same arguments)."""
    result = rbm_ais(rng_key, params, num_chains, num_betas, base_logits)
    return result.log_z, result.std_error


def rbm_log_likelihood(params, data, log_z) -> jax.Array:
    """Average log p(v) = mean(-F(v)) - log Z over binary `data [N, V]`, in nats."""
    params = rbm.as_params(params)
    return -jnp.mean(rbm.free_energy(params, jnp.asarray(data, jnp.float32))) - log_z
