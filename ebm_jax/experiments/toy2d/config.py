"""Configuration of the 2-D objectives benchmark (a frozen dataclass, as the MNIST experiment).

    python -m ebm_jax.experiments.toy2d --objective dsm --dataset eight_gaussians

One run (3,000 steps of batch 256 with an MLP of 3 x 128 units, then 6-16 s of evaluation)
took 12-35 s for score matching and NCE and 25-120 s for the MCMC objectives on a 2-core CPU
(measured: `experiments/toy2d_results.md`, which has every objective x dataset).
"""

import dataclasses
from typing import Optional, Tuple

OBJECTIVES = ("cd", "pcd", "cdk", "dsm", "ssm", "msdsm", "nce")
# The names of `ebm_jax.data.toy2d.DATASETS`, kept here so the CLI can list them before JAX loads.
DATASETS = ("eight_gaussians", "rings", "checkerboard", "two_moons")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "eight_gaussians"  # see ebm_jax.data.toy2d.DATASETS
    objective: str = "dsm"  # one of OBJECTIVES
    # model and optimisation
    features: Tuple[int, ...] = (128, 128, 128)
    steps: int = 3000
    batch_size: int = 256
    learning_rate: float = 1e-3  # Adam, cosine decay to 1 % over `steps`
    num_train: int = 20000  # a finite training set drawn once; held-out points are separate
    num_heldout: int = 10000
    half_width: float = 4.0  # the box [-L, L]^2: grid for Z, MCMC bounds, uniform noise
    # the contrastive objectives (cd: replay buffer; pcd: persistent chains; cdk: from the data)
    contrastive_loss: str = "cd"  # or "hinge"
    alpha: float = 0.1  # the L2 energy term of the CD loss (the tutorial's value). Without it CD-k on
    # the rings diverged: E(fake) grew without bound (to 3e7 by step 3,000) and the data lost all mass
    margin: float = 1.0  # hinge only
    step_size: float = 0.005  # textbook Langevin: x - step grad E + sqrt(2 step) z
    mcmc_steps: int = 50  # per train step, for cd and pcd
    cdk_steps: int = 10  # k of CD-k
    reinit_prob: float = 0.05
    # score matching and NCE
    dsm_sigma: float = 0.1
    ssm_projections: int = 1
    ssm_variance_reduced: bool = True
    msdsm_sigma_max: float = 1.0
    msdsm_sigma_min: float = 0.05
    msdsm_levels: int = 10
    nce_noise: str = "gaussian"  # "gaussian" (fitted to the training data) or "uniform" (the box)
    nce_noise_scale: float = 1.2  # the fitted Gaussian's covariance times scale^2
    nce_nu: int = 4
    # regularisers, on top of any objective
    energy_l2: float = 0.0
    grad_penalty: float = 0.0
    # evaluation
    grid_size: int = 400
    num_eval_samples: int = 2000
    eval_step_size: float = 0.005  # MALA from uniform noise on the box (annealed Langevin for msdsm)
    eval_steps: int = 2000
    annealed_steps_per_level: int = 200
    annealed_eps: float = 1e-3  # Song & Ermon: alpha_i = eps sigma_i^2 / sigma_L^2
    mmd_bandwidth: float = 0.2
    mode_radius: float = 0.6  # 3 std of the 8-Gaussian mixture's components
    log_every: int = 100
    seed: int = 0

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {DATASETS}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {OBJECTIVES}")
        for name in ("steps", "batch_size", "num_train", "num_heldout", "mcmc_steps", "cdk_steps",
                     "ssm_projections", "msdsm_levels", "nce_nu", "num_eval_samples", "eval_steps",
                     "annealed_steps_per_level", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "half_width", "step_size", "dsm_sigma", "msdsm_sigma_max",
                     "msdsm_sigma_min", "nce_noise_scale", "eval_step_size", "annealed_eps",
                     "mmd_bandwidth", "mode_radius", "margin"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
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
    """The defaults above with `overrides`, validated."""
    config = dataclasses.replace(Config(), **overrides)
    config.validate()
    return config
