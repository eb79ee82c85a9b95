"""Training: train states, the jitted steps, objectives, checkpoints and logging.

    make_train_step       the tutorial's image PCD (replay buffer, any sampler, Mesh sharding)
    objectives            CD / PCD / CD-k (+ hinge), DSM / SSM / multi-scale DSM, NCE, regularisers
    make_objective_step   one step for any objective, with the model's non-trained state threaded
"""

from ebm_jax.train import objectives
from ebm_jax.train.objective_step import (
    ObjectiveTrainState,
    create_objective_state,
    energy_function,
    make_objective_step,
)
from ebm_jax.train.objectives import Objective
from ebm_jax.train.state import TrainState, create_train_state
from ebm_jax.train.step import make_train_step, shard_state, train_shardings, tutorial_optimizer, tutorial_schedule

__all__ = [
    "Objective",
    "ObjectiveTrainState",
    "TrainState",
    "create_objective_state",
    "create_train_state",
    "energy_function",
    "make_objective_step",
    "make_train_step",
    "objectives",
    "shard_state",
    "train_shardings",
    "tutorial_optimizer",
    "tutorial_schedule",
]
