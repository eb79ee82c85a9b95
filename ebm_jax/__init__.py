"""ebm_jax: energy-based models in JAX / Flax.

Sign convention: every energy returns E(x), lower = more likely, p(x) ∝ exp(-E(x)).

    energies   pure Linen modules, `[B, ...] -> [B]` (TutorialCNN, CourseCNN, ResNetEnergy, MLPEnergy,
               BernoulliRBM, GaussianBernoulliRBM; `dbn`; ClassifierEnergy: JEM's reading of logits);
               `per_example` / `batched` convert between batched and one-example energies
    compose    the energy algebra: AND, OR, NOT, temperature, the geometric path, conditioning,
               clamping (inpainting)
    generation steered generation over `compose` energies: from noise, inpainting, denoising
    samplers   BlackJAX-shaped kernels `(rng_key, state, energy_fn, **params) -> (state, info)`
               with `energy_fn` mapping ONE example to a scalar: Langevin, MALA, HMC, annealed
               Langevin, block Gibbs (RBMs), replica exchange, AIS; dual-averaging warm-up;
               diagnostics; one spec (`SamplerSpec`) and one runner (`sample`, over `run_chains`)
    buffers    the replay buffer as a fixed-capacity PyTree
    losses     `(...) -> (loss, metrics)`: CD, hinge, regularisers, score matching, NCE
    train      one state and one step for every objective, `state, metrics = train_step(state,
               batch)`, on one device or a data mesh; `objectives`; the fit loop `fit` (verified
               checkpoints, interrupts between steps, divergence rollback: `Rollback`)
    parallel   every core and every process at work: `split_cpu` (one XLA device per core), `data_mesh`,
               `initialize` (several processes on JAX's distributed runtime), `global_batch`, `host_local`
    presets    the UvA tutorial's sampler, objective and optimizer
    pretrained trained energies shipped with the package: `model, params = pretrained.load(name)`
    data       IDX reader, MNIST / Fashion-MNIST sources, seeded batching, 2-D toy datasets
    eval       OOD detection metrics and benchmark, sample quality (FD, KID, classifier score on
               shipped feature classifiers), the tutorial's analysis, 2-D density scores,
               figures, RBM log-likelihoods (exact and AIS log Z)
"""

from ebm_jax import buffers, compose, data, energies, eval, generation, losses, parallel, presets, pretrained, samplers, train
from ebm_jax.buffers import ReplayBuffer
from ebm_jax.energies import (
    BernoulliRBM,
    ClassifierEnergy,
    CourseCNN,
    GaussianBernoulliRBM,
    MLPEnergy,
    ResNetEnergy,
    TutorialCNN,
    batched,
    per_example,
)
from ebm_jax.losses import contrastive_divergence
from ebm_jax.samplers import (
    LangevinInfo,
    LangevinState,
    SamplerSpec,
    ais,
    annealed,
    diagnostics,
    gibbs,
    hmc,
    langevin,
    mala,
    run_chain,
    run_chains,
    sample,
    tempering,
    uniform_starts,
)
from ebm_jax.train import (
    Hook,
    Objective,
    Rollback,
    TrainState,
    create_train_state,
    fit,
    make_train_step,
    objectives,
    shard_state,
    train_shardings,
)
from ebm_jax.types import EnergyFn, SamplingAlgorithm, check_batch

__version__ = "0.1.0"

__all__ = [
    "BernoulliRBM",
    "ClassifierEnergy",
    "CourseCNN",
    "EnergyFn",
    "GaussianBernoulliRBM",
    "Hook",
    "LangevinInfo",
    "LangevinState",
    "MLPEnergy",
    "Objective",
    "ResNetEnergy",
    "ReplayBuffer",
    "Rollback",
    "SamplerSpec",
    "SamplingAlgorithm",
    "TrainState",
    "TutorialCNN",
    "ais",
    "annealed",
    "batched",
    "buffers",
    "check_batch",
    "compose",
    "contrastive_divergence",
    "create_train_state",
    "data",
    "diagnostics",
    "energies",
    "eval",
    "fit",
    "generation",
    "gibbs",
    "hmc",
    "langevin",
    "losses",
    "make_train_step",
    "mala",
    "objectives",
    "parallel",
    "per_example",
    "presets",
    "pretrained",
    "run_chain",
    "run_chains",
    "sample",
    "samplers",
    "shard_state",
    "tempering",
    "train",
    "train_shardings",
    "uniform_starts",
]
