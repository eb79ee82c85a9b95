"""JEM (Grathwohl et al. 2020) on MNIST / Fashion-MNIST, side by side with cross-entropy alone."""

from ebm_jax.experiments.jem.config import Config
from ebm_jax.experiments.jem.run import train_and_evaluate

__all__ = ["Config", "train_and_evaluate"]
