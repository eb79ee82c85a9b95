"""Configuration of the 2-D objectives benchmark (a frozen dataclass, as the MNIST experiment).

    python -m ebm_jax.experiments.toy2d --objective dsm --dataset eight_gaussians

One run (3,000 steps of batch 256 with an MLP of 3 x 128 units, then 6-16 s of evaluation)
took 12-35 s for score matching and NCE and 25-120 s for the MCMC objectives on a 2-core CPU
(measured: `experiments/toy2d_results.md`, which has every objective x dataset).
"""

import dataclasses
from typing import Tuple

from ebm_jax.experiments.cli import check_ranges, setting

OBJECTIVES = ("cd", "pcd", "cdk", "dsm", "ssm", "msdsm", "nce")
# The names of `ebm_jax.data.toy2d.DATASETS`, kept here so the CLI can list them before JAX loads.
DATASETS = ("eight_gaussians", "rings", "checkerboard", "two_moons")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = setting("eight_gaussians", "see ebm_jax.data.toy2d.DATASETS", choices=DATASETS)
    objective: str = setting("dsm", "training objective", choices=OBJECTIVES)
    features: Tuple[int, ...] = setting((128, 128, 128), "hidden widths of the MLP energy")
    steps: int = setting(3000, "train steps")
    batch_size: int = setting(256, "training batch size")
    learning_rate: float = setting(1e-3, "Adam learning rate, cosine decay to 1 % over the steps")
    num_train: int = setting(20000, "size of the training set, drawn once")
    num_heldout: int = setting(10000, "held-out points for the NLL")
    half_width: float = setting(4.0, "the box [-L, L]^2: grid for Z, MCMC bounds, uniform noise")
    contrastive_loss: str = setting("cd", "cd / pcd / cdk: the CD loss or the pairwise hinge", choices=("cd", "hinge"))
    alpha: float = setting(0.1, "L2 energy term of the CD loss (the tutorial's 0.1; without it CD-k diverged on the rings)")
    margin: float = setting(1.0, "hinge margin")
    step_size: float = setting(0.005, "textbook Langevin of cd / pcd / cdk: x - step grad E + sqrt(2 step) z")
    mcmc_steps: int = setting(50, "Langevin steps per train step for cd and pcd")
    cdk_steps: int = setting(10, "k of CD-k")
    reinit_prob: float = setting(0.05, "cd: share of chains started from fresh noise")
    dsm_sigma: float = setting(0.1, "DSM noise level")
    ssm_projections: int = setting(1, "SSM projections per example")
    ssm_variance_reduced: bool = setting(True, "SSM with the variance-reduced second term")
    msdsm_sigma_max: float = setting(1.0, "multi-scale DSM: largest sigma")
    msdsm_sigma_min: float = setting(0.05, "multi-scale DSM: smallest sigma (the model's)")
    msdsm_levels: int = setting(10, "multi-scale DSM: geometric sigma levels")
    nce_noise: str = setting("gaussian", "NCE noise: a Gaussian fitted to the data, or uniform on the box", choices=("gaussian", "uniform"))
    nce_noise_scale: float = setting(1.2, "NCE: the fitted Gaussian's covariance times scale^2")
    nce_nu: int = setting(4, "NCE: noise samples per data sample")
    energy_l2: float = setting(0.0, "weight of mean E(data)^2 added to any objective")
    grad_penalty: float = setting(0.0, "weight of mean |grad E(data)|^2 added to any objective")
    grid_size: int = setting(400, "grid cells per axis for Z and the NLL")
    num_eval_samples: int = setting(2000, "model samples for MMD and mode coverage")
    eval_step_size: float = setting(0.005, "MALA step size of the evaluation sampler (from uniform noise on the box)")
    eval_steps: int = setting(2000, "MALA steps of the evaluation sampler")
    annealed_steps_per_level: int = setting(200, "msdsm evaluation: annealed Langevin steps per level")
    annealed_eps: float = setting(1e-3, "msdsm evaluation: alpha_i = eps sigma_i^2 / sigma_L^2 (Song & Ermon)")
    mmd_bandwidth: float = setting(0.2, "RBF bandwidth of the MMD")
    mode_radius: float = setting(0.6, "8 Gaussians: a sample within this of a mode counts for it")
    log_every: int = setting(100, "train metrics logged every this many steps")
    checkpoint_every: int = setting(500, "latest checkpoint every this many steps")
    seed: int = setting(0, "seed of the data, initialisation, batches and samplers")

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {DATASETS}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {OBJECTIVES}")
        check_ranges(self, at_least_one=("steps", "batch_size", "num_train", "num_heldout", "mcmc_steps", "cdk_steps",
                                         "ssm_projections", "msdsm_levels", "nce_nu", "num_eval_samples", "eval_steps",
                                         "annealed_steps_per_level", "log_every", "checkpoint_every"),
                     positive=("learning_rate", "half_width", "step_size", "dsm_sigma", "msdsm_sigma_max",
                               "msdsm_sigma_min", "nce_noise_scale", "eval_step_size", "annealed_eps",
                               "mmd_bandwidth", "mode_radius", "margin"))
        if self.msdsm_sigma_min >= self.msdsm_sigma_max:
            raise ValueError("msdsm_sigma_min must be below msdsm_sigma_max")
        if self.grid_size < 2 or self.num_eval_samples < 2:
            raise ValueError("grid_size and num_eval_samples must be >= 2")
        if self.contrastive_loss not in ("cd", "hinge"):
            raise ValueError(f"contrastive_loss must be 'cd' or 'hinge', got {self.contrastive_loss!r}")
        if self.nce_noise not in ("gaussian", "uniform"):
            raise ValueError(f"nce_noise must be 'gaussian' or 'uniform', got {self.nce_noise!r}")
        if self.batch_size > self.num_train:
            raise ValueError(f"batch_size={self.batch_size} exceeds num_train={self.num_train}")
        if min(self.alpha, self.energy_l2, self.grad_penalty) < 0 or not 0 <= self.reinit_prob <= 1:
            raise ValueError("alpha, energy_l2, grad_penalty must be >= 0 and reinit_prob in [0, 1]")


def get_config(**overrides) -> Config:
    """The defaults above with `overrides`, validated. Every field is also a flag of
    `python -m ebm_jax.experiments.toy2d` (`--dsm-sigma 0.2`)."""
    config = dataclasses.replace(Config(), **overrides)
    config.validate()
    return config


# Fields a resumed run may change: evaluation and logging, not what it trains.
RESUME_MAY_CHANGE = ("grid_size", "num_eval_samples", "eval_step_size", "eval_steps", "annealed_steps_per_level",
                     "annealed_eps", "mmd_bandwidth", "mode_radius", "log_every", "checkpoint_every")
