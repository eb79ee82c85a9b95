"""Deep belief nets (Hinton, Osindero & Teh 2006): a stack of Bernoulli RBMs trained greedily.

`layers` is a list of RBM params `{"W": [V_l, H_l], "b": [V_l], "c": [H_l]}`, bottom first, with
H_l = V_{l+1}. Layer l + 1 is trained as an RBM on the hidden activations of layer l
(`up(layers[:l + 1], data)`, the conditional means p(h = 1 | v), or binary draws of them).
The generative model is the top RBM's joint over (h_{L-2}, h_{L-1}) with directed sigmoid
layers p(h_{l-1} | h_l) below it, so a sample is block Gibbs in the top RBM, then one top-down
pass (`sample`).
"""

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from ebm_jax.energies import rbm
from ebm_jax.samplers import gibbs
from ebm_jax.samplers.loop import sample as run_sampler
from ebm_jax.types import check


def check_layers(layers: Sequence[dict]) -> list:
    """The layers as float32 params with matching sizes (H_l = V_{l+1})."""
    layers = [rbm.as_params(p) for p in layers]
    check(len(layers) >= 1, "a DBN needs at least one layer")
    for lower, upper in zip(layers, layers[1:]):
        check(lower["W"].shape[1] == upper["W"].shape[0],
              f"layer sizes do not chain: {lower['W'].shape} then {upper['W'].shape}")
    return layers


def up(layers: Sequence[dict], v: jax.Array, rng_key: Optional[jax.Array] = None) -> jax.Array:
    """The activations of the top layer's hidden units given `v [B, V_0]`: p(h = 1 | .) layer by
    layer (binary draws at every layer when `rng_key` is given)."""
    for params in layers:
        v = rbm.hidden_probs(params, v)
        if rng_key is not None:
            rng_key, key = jax.random.split(rng_key)
            v = jax.random.bernoulli(key, v).astype(jnp.float32)
    return v


def sample(rng_key: jax.Array, layers: Sequence[dict], num_samples: int, num_steps: int,
           top_starts: Optional[jax.Array] = None) -> jax.Array:
    """`[num_samples, V_0]` visible means p(v = 1 | h_0) of DBN samples: `num_steps` block-Gibbs
    sweeps in the top RBM from `top_starts [num_samples, V_top]` (Bernoulli(1/2) draws if None),
    then binary draws down the directed layers."""
    layers = check_layers(layers)
    top = layers[-1]
    key_start, key_gibbs, key_down = jax.random.split(rng_key, 3)
    if top_starts is None:
        top_starts = jax.random.bernoulli(key_start, 0.5, (int(num_samples), top["W"].shape[0])).astype(jnp.float32)
    energy_fn = lambda v, h: rbm.joint_energy(top, v, h)
    final, _, _ = run_sampler(key_gibbs, gibbs.spec(num_steps, top["W"].shape[1]), energy_fn, top_starts)
    h = final.position
    for params in reversed(layers[:-1]):
        probs = rbm.visible_probs(params, h)
        key_down, key = jax.random.split(key_down)
        h = jax.random.bernoulli(key, probs).astype(jnp.float32)
    return probs if len(layers) > 1 else rbm.visible_probs(top, final.hidden)
