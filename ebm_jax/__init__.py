"""ebm_jax: energy-based models in JAX / Flax.

Sign convention: every energy returns E(x), lower = more likely, p(x) ∝ exp(-E(x)).

    energies   pure Linen modules, `[B, ...] -> [B]` (TutorialCNN, CourseCNN, ResNetEnergy, MLPEnergy)
    samplers   BlackJAX-shaped kernels `(rng_key, state, energy_fn, **params) -> (state, info)`
               with `energy_fn` mapping ONE example to a scalar: Langevin, MALA, HMC, annealed
               Langevin, replica exchange; dual-averaging warm-up; diagnostics; `run_chains`
    buffers    the replay buffer as a fixed-capacity PyTree
    losses     `(...) -> (loss, metrics)`: CD, hinge, regularisers, score matching, NCE
    train      `state, metrics = train_step(state, batch)`: `make_train_step` (the tutorial's
               image PCD, shardable) and `make_objective_step` for any of `train.objectives`
    parallel   every core at work: `split_cpu` (one XLA device per core), `data_mesh`,
               `shard_chains` (sampler chains under shard_map, same draws as one device)
    data       IDX reader, MNIST / Fashion-MNIST sources, seeded batching
    data       also `toy2d`: 2-D datasets with exact densities
    eval       whole-split energies, the tutorial's OOD analysis, 2-D density scores, figures
"""

from ebm_jax import buffers, data, energies, eval, losses, parallel, samplers, train
from ebm_jax.buffers import ReplayBuffer
from ebm_jax.energies import CourseCNN, MLPEnergy, ResNetEnergy, TutorialCNN, per_example
from ebm_jax.losses import contrastive_divergence
from ebm_jax.samplers import (
    LangevinInfo,
    LangevinState,
    annealed,
    diagnostics,
    hmc,
    langevin,
    mala,
    run_chain,
    run_chains,
    tempering,
)
from ebm_jax.samplers.generate import generate_from_noise
from ebm_jax.train import (
    Objective,
    ObjectiveTrainState,
    TrainState,
    create_objective_state,
    create_train_state,
    make_objective_step,
    objectives,
    make_train_step,
    shard_state,
    train_shardings,
    tutorial_optimizer,
)
from ebm_jax.types import EnergyFn, SamplingAlgorithm

__version__ = "0.1.0"

__all__ = [
    "CourseCNN",
    "EnergyFn",
    "LangevinInfo",
    "LangevinState",
    "MLPEnergy",
    "Objective",
    "ObjectiveTrainState",
    "ResNetEnergy",
    "ReplayBuffer",
    "SamplingAlgorithm",
    "TrainState",
    "TutorialCNN",
    "annealed",
    "buffers",
    "contrastive_divergence",
    "create_objective_state",
    "create_train_state",
    "data",
    "diagnostics",
    "energies",
    "eval",
    "generate_from_noise",
    "hmc",
    "langevin",
    "losses",
    "make_objective_step",
    "make_train_step",
    "mala",
    "objectives",
    "parallel",
    "per_example",
    "run_chain",
    "run_chains",
    "samplers",
    "shard_state",
    "tempering",
    "train",
    "train_shardings",
    "tutorial_optimizer",
]
