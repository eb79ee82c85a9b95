"""Training objectives: pure functions from energies to `(loss, metrics)`."""

from ebm_jax.losses.contrastive import contrastive_divergence

__all__ = ["contrastive_divergence"]
