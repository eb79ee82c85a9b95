"""A ResNet energy with GroupNorm, Swish and spectral normalisation (Miyato et al. 2018).

    x [B, H, W, C] -> conv3x3 -> stages of residual blocks -> GroupNorm, swish -> global mean
    pool -> dense -> E [B]  (with `outputs=K` > 1: dense K -> logits [B, K], for JEM's
    `ClassifierEnergy`)
    block(h) = shortcut(h) + conv3x3(swish(GN(conv3x3(swish(GN(h)))))), the first block of each
    stage after the first halving the resolution (stride 2; the shortcut is a strided 1x1 conv)

Every conv and dense layer is wrapped in `flax.linen.SpectralNorm`: the kernel (reshaped to
[kh * kw * c_in, c_out]) is divided by its largest singular value, estimated by power iteration
from a stored vector `u`. That vector and the estimate live in the `batch_stats` collection,
which the train state carries as `model_state`, never as hidden Python state:

    E = model.apply({"params": p, "batch_stats": s}, x)                  # pure, stats frozen
    s = spectral_update(model)({"params": p, "batch_stats": s}, x)      # one power iteration

Works for any image size whose stages divide evenly (28x28x1 and 32x32x3 tested).
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

STATS = "batch_stats"


class ResNetEnergy(nn.Module):
    """`widths`: channels per stage; `blocks_per_stage`; `groups` for GroupNorm (must divide every
    width); `spectral_norm`: wrap every conv/dense layer; `power_iterations` per update;
    `outputs`: 1 for the energy `[B]`, K > 1 for K logits `[B, K]`."""

    widths: Sequence[int] = (32, 64, 128)
    blocks_per_stage: int = 1
    groups: int = 8
    spectral_norm: bool = True
    power_iterations: int = 1
    outputs: int = 1

    def _check_sizes(self):
        for width in self.widths:
            if width % self.groups:
                raise ValueError(f"groups={self.groups} must divide every width, got {tuple(self.widths)}")
        if self.blocks_per_stage < 1 or not self.widths:
            raise ValueError("need at least one stage and one block per stage")
        if self.outputs < 1:
            raise ValueError(f"outputs must be >= 1, got {self.outputs}")

    def _wrap(self, layer, update_stats):
        if not self.spectral_norm:
            return layer
        normed = nn.SpectralNorm(layer, n_steps=self.power_iterations, collection_name=STATS)
        return lambda h: normed(h, update_stats=update_stats)

    @nn.compact
    def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"ResNetEnergy takes images [B, H, W, C], got shape {x.shape}")
        self._check_sizes()
        conv = lambda width, kernel, stride=1: self._wrap(
            nn.Conv(width, (kernel, kernel), strides=stride, padding="SAME"), update_stats
        )
        h = conv(self.widths[0], 3)(x)
        for stage, width in enumerate(self.widths):
            for block in range(self.blocks_per_stage):
                stride = 2 if (stage > 0 and block == 0) else 1
                shortcut = h
                if stride != 1 or h.shape[-1] != width:
                    shortcut = conv(width, 1, stride)(h)
                h = conv(width, 3, stride)(nn.swish(nn.GroupNorm(self.groups)(h)))
                h = conv(width, 3)(nn.swish(nn.GroupNorm(self.groups)(h)))
                h = shortcut + h
        h = nn.swish(nn.GroupNorm(self.groups)(h))
        h = jnp.mean(h, axis=(1, 2))
        out = self._wrap(nn.Dense(self.outputs), update_stats)(h)
        return out if self.outputs > 1 else out[:, 0]


def spectral_update(model: nn.Module) -> Callable:
    """`(variables, x) -> model_state`: one forward pass with `update_stats=True`, returning the
    new `{"batch_stats": ...}` (the power iteration's next `u` and sigma estimates)."""

    def update(variables, x):
        _, state = model.apply(variables, x, update_stats=True, mutable=[STATS])
        return jax.lax.stop_gradient(dict(state))

    return update
