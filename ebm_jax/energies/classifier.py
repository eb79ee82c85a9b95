"""Classifier energies (JEM: Grathwohl et al. 2020, "Your classifier is secretly an energy based
model"): a classifier's logits f(x) `[B, K]` read as energies of the joint and the marginal,

    E(x, y) = -f(x)[y]                       p(x, y) ∝ exp(f(x)[y])
    E(x)    = -logsumexp_y f(x)[y]            p(x) = sum_y p(x, y)
    p(y | x) = softmax(f(x))[y] = exp(E(x) - E(x, y))

so the cross-entropy of the classifier is `E(x, y) - E(x)` = -log p(y | x), and one network
classifies, generates (sample E(x), or E(x, y) for a class) and scores inputs.

`ClassifierEnergy(backbone)` wraps any logits module `[B, ...] -> [B, K]` (the library's
networks give K logits with `outputs=K`: `TutorialCNN`, `ResNetEnergy`, `MLPEnergy`):

    model.apply(v, x)                  E(x)       [B]
    model.apply(v, x, y)               E(x, y)    [B]   (y: integer labels [B])
    model.apply(v, x, method="logits") f(x)       [B, K]
    model.apply(v, x, method="probs")  p(y | x)   [B, K]

Keyword arguments go to the backbone (`update_stats=True` for the ResNet's spectral norm, so
`spectral_update(model)` works on the wrapper). The backbone's parameters sit under "backbone".
"""

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp


class ClassifierEnergy(nn.Module):
    """E(x) and E(x, y) of a logits module `backbone` `[B, ...] -> [B, K]`."""

    backbone: nn.Module

    def __call__(self, x: jax.Array, y: Optional[jax.Array] = None, **kwargs) -> jax.Array:
        logits = self.logits(x, **kwargs)
        if y is None:
            return -jax.nn.logsumexp(logits, axis=-1)
        y = jnp.asarray(y)
        if not jnp.issubdtype(y.dtype, jnp.integer) or y.shape != logits.shape[:1]:
            raise ValueError(f"y must be integer labels [B] = [{logits.shape[0]}], got {y.dtype} {y.shape}")
        return -jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]

    def logits(self, x: jax.Array, **kwargs) -> jax.Array:
        logits = self.backbone(x, **kwargs)
        if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"the backbone must return logits [B, K] = [{x.shape[0]}, K], got {logits.shape}; "
                             "build it with outputs=K")
        return logits

    def probs(self, x: jax.Array, **kwargs) -> jax.Array:
        return jax.nn.softmax(self.logits(x, **kwargs), axis=-1)
