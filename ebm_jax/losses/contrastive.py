"""Contrastive divergence with an L2 energy regulariser (Du & Mordatch 2019; the UvA tutorial).

    loss = [mean E(real) - mean E(fake)] + alpha * mean(E(real)^2 + E(fake)^2)

In the tutorial's sign (network output = -E) this is `fake_out.mean() - real_out.mean()` plus
`alpha * (real_out**2 + fake_out**2).mean()`: the same number.
"""

from typing import Dict, Tuple

import jax
import jax.numpy as jnp


def contrastive_divergence(
    energy_real: jax.Array, energy_fake: jax.Array, alpha: float = 0.1
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """energy_real `[B]`, energy_fake `[B']` -> `(loss [], metrics)`.

    metrics: `loss`, `loss_cd` (the contrastive term), `loss_reg` (alpha times the L2 term),
    `energy_real`, `energy_fake` (means).
    """
    loss_cd = jnp.mean(energy_real) - jnp.mean(energy_fake)
    # The tutorial averages (real^2 + fake^2) elementwise over the paired batch.
    loss_reg = alpha * (jnp.mean(jnp.square(energy_real)) + jnp.mean(jnp.square(energy_fake)))
    loss = loss_cd + loss_reg
    metrics = dict(
        loss=loss,
        loss_cd=loss_cd,
        loss_reg=loss_reg,
        energy_real=jnp.mean(energy_real),
        energy_fake=jnp.mean(energy_fake),
    )
    return loss, metrics
