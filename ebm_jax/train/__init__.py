"""Training: the train state, the jitted step, and the epoch loop with logging/checkpoints."""

from ebm_jax.train.state import TrainState, create_train_state
from ebm_jax.train.step import make_train_step, shard_state, train_shardings, tutorial_optimizer, tutorial_schedule

__all__ = [
    "TrainState",
    "create_train_state",
    "make_train_step",
    "shard_state",
    "train_shardings",
    "tutorial_optimizer",
    "tutorial_schedule",
]
