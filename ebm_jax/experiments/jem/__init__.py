"""JEM (Grathwohl et al. 2020) on MNIST / Fashion-MNIST, side by side with cross-entropy alone."""

from ebm_jax.experiments.jem.config import Config
from ebm_jax.experiments.jem.run import restore_model, train_and_evaluate

__all__ = ["Config", "restore_model", "train_and_evaluate"]
