"""Training: one state, one jitted step for every objective, the fit loop, checkpoints, logging.

    TrainState, create_train_state   step, params, model_state, opt_state, objective_state, key
    make_train_step                  `state, metrics = train_step(state, batch)`, on one device
                                     or a data mesh (`shard_state`, `train_shardings`)
    objectives                       CD / PCD / PT / CD-k (+ hinge), DSM / SSM / multi-scale DSM,
                                     NCE, JEM (labelled batches), regularisers
    fit, Hook, Rollback              the host loop: progress, metrics, verified checkpoints, resume,
                                     interrupts between steps, divergence rollback, hooks
"""

from ebm_jax.train import objectives
from ebm_jax.train.loop import Hook, Rollback, fit
from ebm_jax.train.objectives import Objective
from ebm_jax.train.state import TrainState, create_train_state
from ebm_jax.train.step import energy_function, make_train_step, shard_state, train_shardings

__all__ = [
    "Hook",
    "Rollback",
    "Objective",
    "TrainState",
    "create_train_state",
    "energy_function",
    "fit",
    "make_train_step",
    "objectives",
    "shard_state",
    "train_shardings",
]
