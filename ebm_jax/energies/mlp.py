"""An MLP energy for low-dimensional data, optionally noise-conditional.

    E(x)         = head(swish(... Dense(x)))                     x [B, d] -> [B]
    E(x, sigma)  = head(swish(... Dense([x, log sigma]))) / sigma

The 1/sigma output scale (as the "score / sigma" of Song & Ermon 2020) makes sigma * grad E, the
quantity multi-scale DSM fits to N(0, I) noise, O(1) at every noise level.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLPEnergy(nn.Module):
    """`features`: hidden widths; `noise_conditional`: take `sigma [B]` as a second input;
    `outputs` > 1: return that many logits `[B, K]` (for `ClassifierEnergy`) instead of E `[B]`."""

    features: Sequence[int] = (128, 128, 128)
    noise_conditional: bool = False
    outputs: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, sigma: Optional[jax.Array] = None) -> jax.Array:
        if x.ndim < 2:
            raise ValueError(f"MLPEnergy takes a batch [B, ...], got shape {x.shape}")
        h = x.reshape(x.shape[0], -1)
        if self.noise_conditional:
            if sigma is None:
                raise ValueError("this MLPEnergy is noise-conditional: call it as model.apply(params, x, sigma)")
            sigma = jnp.broadcast_to(jnp.asarray(sigma, h.dtype), (x.shape[0],))
            h = jnp.concatenate([h, jnp.log(sigma)[:, None]], axis=-1)
        elif sigma is not None:
            raise ValueError("this MLPEnergy is not noise-conditional; build it with noise_conditional=True")
        for width in self.features:
            h = nn.swish(nn.Dense(width)(h))
        if self.outputs > 1:
            if self.noise_conditional:
                raise ValueError("a noise-conditional MLPEnergy has one output")
            return nn.Dense(self.outputs)(h)
        if self.outputs < 1:
            raise ValueError(f"outputs must be >= 1, got {self.outputs}")
        energy = nn.Dense(1)(h)[:, 0]
        return energy / sigma if self.noise_conditional else energy
