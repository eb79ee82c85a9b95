"""Restricted Boltzmann machines: the joint energy, the free energy, the two conditionals.

Bernoulli-Bernoulli RBM (Smolensky 1986; Hinton 2002), visible v in {0, 1}^V, hidden
h in {0, 1}^H, parameters `{"W": [V, H], "b": [V], "c": [H]}`:

    E(v, h) = -v^T W h - b^T v - c^T h
    F(v)    = -log sum_h exp(-E(v, h)) = -b^T v - sum_j softplus(c_j + (v^T W)_j)
    p(h_j = 1 | v) = sigmoid(c_j + (v^T W)_j)        p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)

Gaussian-Bernoulli RBM for real-valued v (Hinton & Salakhutdinov 2006; unit variances, as for
standardised data, Hinton 2010 section 13.2):

    E(v, h) = |v - b|^2 / 2 - v^T W h - c^T h
    F(v)    = |v - b|^2 / 2 - sum_j softplus(c_j + (v^T W)_j)
    p(v | h) = N(b + W h, I)                         p(h_j = 1 | v) as above

Every function takes an inverse temperature `beta` (default 1): the energies are multiplied by
it and the conditionals are those of exp(-beta E(v, h)); note that the free energy at beta is
-log sum_h exp(-beta E(v, h)), not beta F(v). Functions broadcast over leading axes:
`v [..., V]`, `h [..., H]` -> `[...]`.

The Flax modules `BernoulliRBM` and `GaussianBernoulliRBM` hold `W, b, c` in their "params"
collection and follow the library's convention for energies with latent units:
`apply(variables, v [B, V]) -> F(v) [B]` (the energy the rest of the library sees, h summed
out) and `apply(variables, v, h [B, H]) -> E(v, h) [B]` (the joint, which block Gibbs reads its
conditionals from; `samplers.gibbs`).
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_jax.types import check


def joint_energy(params, v, h, beta=1.0, visible: str = "bernoulli"):
    """beta E(v, h), `[...]`."""
    interaction = jnp.einsum("...i,ij,...j->...", v, params["W"], h)
    return beta * (_visible_term(params, v, visible) - interaction - h @ params["c"])


def free_energy(params, v, beta=1.0, visible: str = "bernoulli"):
    """-log sum_h exp(-beta E(v, h)), `[...]`."""
    return beta * _visible_term(params, v, visible) - jnp.sum(jax.nn.softplus(beta * hidden_logits(params, v)), -1)


def hidden_logits(params, v):
    """c + v^T W, `[..., H]`: the log-odds of p(h_j = 1 | v) at beta = 1."""
    return v @ params["W"] + params["c"]


def hidden_probs(params, v, beta=1.0):
    """p(h = 1 | v) under exp(-beta E), `[..., H]`."""
    return jax.nn.sigmoid(beta * hidden_logits(params, v))


def visible_probs(params, h, beta=1.0):
    """p(v = 1 | h) of a Bernoulli RBM under exp(-beta E), `[..., V]`."""
    return jax.nn.sigmoid(beta * (h @ params["W"].T + params["b"]))


def visible_mean(params, h):
    """E[v | h] = b + W h of a Gaussian-Bernoulli RBM (unit variances), `[..., V]`."""
    return h @ params["W"].T + params["b"]


def reconstruction_error(params, v):
    """Mean over the batch of |v - p(v = 1 | p(h = 1 | v))|^2 summed over pixels, `v [B, V]`: the
    cheap progress metric of Hinton (2010, section 5), not the objective."""
    recon = visible_probs(params, hidden_probs(params, v))
    return jnp.mean(jnp.sum(jnp.square(v - recon), -1))


def pseudo_log_likelihood(rng_key, params, v):
    """Stochastic pseudo-log-likelihood of binary `v [B, V]`, per example `[B]`:
    V log sigmoid(F(v~) - F(v)) with v~ = v with one uniformly chosen unit flipped per example, an
    unbiased estimate of sum_i log p(v_i | v_-i) (the estimator of scikit-learn's BernoulliRBM)."""
    num_visible = v.shape[-1]
    flip = jax.random.randint(rng_key, v.shape[:-1], 0, num_visible)
    flipped = jnp.abs(v - jax.nn.one_hot(flip, num_visible, dtype=v.dtype))
    return num_visible * jax.nn.log_sigmoid(free_energy(params, flipped) - free_energy(params, v))


def init_params(rng_key, num_visible: int, num_hidden: int, scale: float = 0.01, visible_bias=None):
    """W ~ N(0, scale^2), c = 0, b = `visible_bias` (e.g. `base_rate_logits(data)`, Hinton 2010
    section 8) or 0: `{"W": [V, H], "b": [V], "c": [H]}` float32."""
    check(num_visible >= 1 and num_hidden >= 1, f"need num_visible, num_hidden >= 1, got {num_visible}, {num_hidden}")
    b = jnp.zeros((num_visible,), jnp.float32) if visible_bias is None else jnp.asarray(visible_bias, jnp.float32)
    return {"W": scale * jax.random.normal(rng_key, (num_visible, num_hidden), jnp.float32), "b": b,
            "c": jnp.zeros((num_hidden,), jnp.float32)}


def base_rate_logits(data, eps: float = 1e-3):
    """log(m / (1 - m)) of the pixel means m of binary `data [N, V]`, clipped to [eps, 1 - eps]:
    the visible biases of the factorised "base-rate" model (Salakhutdinov & Murray 2008)."""
    mean = jnp.clip(jnp.mean(jnp.asarray(data, jnp.float32), 0), eps, 1 - eps)
    return jnp.log(mean) - jnp.log1p(-mean)


def as_params(params):
    """`{"W", "b", "c"}` as float32 JAX arrays, shapes checked; accepts a module's variables
    (`{"params": {...}}`) too."""
    if "params" in params:
        params = params["params"]
    missing = {"W", "b", "c"} - set(params)
    check(not missing, f"RBM params need W [V, H], b [V], c [H]; missing {sorted(missing)}")
    out = {k: jnp.asarray(params[k], jnp.float32) for k in ("W", "b", "c")}
    V, H = out["W"].shape if out["W"].ndim == 2 else (None, None)
    check(V is not None and out["b"].shape == (V,) and out["c"].shape == (H,),
          f"RBM params need W [V, H], b [V], c [H]; got {[tuple(out[k].shape) for k in 'Wbc']}")
    return out


def _visible_term(params, v, visible):
    if visible == "bernoulli":
        return -(v @ params["b"])
    if visible == "gaussian":
        return 0.5 * jnp.sum(jnp.square(v - params["b"]), -1)
    raise ValueError(f"visible must be 'bernoulli' or 'gaussian', got {visible!r}")


class BernoulliRBM(nn.Module):
    """`apply(variables, v [B, V]) -> F(v) [B]`; `apply(variables, v, h [B, H]) -> E(v, h) [B]`.

    Attributes:
      num_hidden: H.
      init_scale: W starts as N(0, init_scale^2) (Hinton 2010: 0.01); b and c start at 0.
    """

    num_hidden: int
    init_scale: float = 0.01
    visible = "bernoulli"

    @nn.compact
    def __call__(self, v, h: Optional[jax.Array] = None):
        num_visible = v.shape[-1]
        params = {
            "W": self.param("W", nn.initializers.normal(self.init_scale), (num_visible, self.num_hidden), jnp.float32),
            "b": self.param("b", nn.initializers.zeros, (num_visible,), jnp.float32),
            "c": self.param("c", nn.initializers.zeros, (self.num_hidden,), jnp.float32),
        }
        if h is None:
            return free_energy(params, v, visible=self.visible)
        return joint_energy(params, v, h, visible=self.visible)


class GaussianBernoulliRBM(BernoulliRBM):
    """The Gaussian-Bernoulli RBM (unit visible variances): real-valued `v [B, V]`."""

    visible = "gaussian"
