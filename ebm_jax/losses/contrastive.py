"""The contrastive family: losses of E(real) against E(fake) from some sampler.

    contrastive_divergence   [mean E(real) - mean E(fake)] + alpha * mean(E(real)^2 + E(fake)^2)
                             (Du & Mordatch 2019; the UvA tutorial's loss, alpha = 0.1)
    hinge_contrastive        mean_i max(0, margin + E(real_i) - E(fake_i))  (LeCun et al. 2006):
                             pushes each fake at least `margin` above its paired real, then stops

In the tutorial's sign (network output = -E) the CD loss is `fake_out.mean() - real_out.mean()`
plus `alpha * (real_out**2 + fake_out**2).mean()`: the same number. Which sampler makes the fakes
(replay buffer, persistent chains, k steps from the data) is the objective's business
(`ebm_jax.train.objectives`), not the loss's. Regularisers that need the energy function itself
(the gradient penalty) are in `ebm_jax.losses.regularisers`.
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
    loss_reg = energy_l2(energy_real, energy_fake, alpha)
    return loss_cd + loss_reg, _metrics(loss_cd + loss_reg, loss_cd, loss_reg, energy_real, energy_fake)


def hinge_contrastive(
    energy_real: jax.Array, energy_fake: jax.Array, margin: float = 1.0, alpha: float = 0.0
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
    """Pairwise hinge, real_i against fake_i (both `[B]`), plus the optional L2 term.

    With margin m the loss is zero once every fake is m above its real: unlike CD it does not
    keep pushing, so it shapes a landscape without estimating a density.
    """
    if energy_real.shape != energy_fake.shape:
        raise ValueError(f"the hinge pairs reals with fakes: shapes {energy_real.shape} != {energy_fake.shape}")
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    loss_hinge = jnp.mean(jax.nn.relu(margin + energy_real - energy_fake))
    loss_reg = energy_l2(energy_real, energy_fake, alpha)
    return loss_hinge + loss_reg, _metrics(loss_hinge + loss_reg, loss_hinge, loss_reg, energy_real, energy_fake)


def energy_l2(energy_real: jax.Array, energy_fake: jax.Array, alpha: float) -> jax.Array:
    """alpha * (mean E(real)^2 + mean E(fake)^2): keeps energies near 0 (the tutorial's term)."""
    return alpha * (jnp.mean(jnp.square(energy_real)) + jnp.mean(jnp.square(energy_fake)))


def _metrics(loss, loss_cd, loss_reg, energy_real, energy_fake):
    return dict(
        loss=loss,
        loss_cd=loss_cd,
        loss_reg=loss_reg,
        energy_real=jnp.mean(energy_real),
        energy_fake=jnp.mean(energy_fake),
    )
