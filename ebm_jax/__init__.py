"""ebm_jax: energy-based models in JAX / Flax.

Sign convention: every energy returns E(x), lower = more likely, p(x) ∝ exp(-E(x)).

    energies   pure Linen modules, `[B, ...] -> [B]` (TutorialCNN, CourseCNN)
    samplers   BlackJAX-shaped kernels `(rng_key, state, energy_fn, **params) -> (state, info)`
               with `energy_fn` mapping ONE example to a scalar: Langevin, MALA, HMC, annealed
               Langevin, replica exchange; dual-averaging warm-up; diagnostics; `run_chains`
    buffers    the replay buffer as a fixed-capacity PyTree
    losses     `(energies) -> (loss, metrics)`
    train      `TrainState` and `make_train_step`: `state, metrics = train_step(state, batch)`
    data       IDX reader, MNIST / Fashion-MNIST sources, seeded batching
    eval       whole-split energies, the tutorial's OOD analysis, figures
"""

from ebm_jax import buffers, data, energies, eval, losses, samplers, train
from ebm_jax.buffers import ReplayBuffer
from ebm_jax.energies import CourseCNN, TutorialCNN, per_example
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
    TrainState,
    create_train_state,
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
    "ReplayBuffer",
    "SamplingAlgorithm",
    "TrainState",
    "TutorialCNN",
    "annealed",
    "buffers",
    "contrastive_divergence",
    "create_train_state",
    "data",
    "diagnostics",
    "energies",
    "eval",
    "generate_from_noise",
    "hmc",
    "langevin",
    "losses",
    "make_train_step",
    "mala",
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
