"""The UvA tutorial's MNIST experiment: `python -m ebm_jax.experiments.mnist --help`."""

from ebm_jax.experiments.mnist.config import Config, get_config
from ebm_jax.experiments.mnist.run import restore_params, train_and_evaluate

__all__ = ["Config", "get_config", "restore_params", "train_and_evaluate"]
