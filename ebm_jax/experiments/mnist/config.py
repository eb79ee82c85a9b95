"""Configuration of the MNIST experiment (a frozen dataclass; presets via `get_config`)."""

import dataclasses
from typing import Optional

PRESETS = ("default", "tutorial")


@dataclasses.dataclass(frozen=True)
class Config:
    # data
    dataset: str = "mnist"  # "mnist" or "fashion_mnist"
    data_dir: Optional[str] = None  # None: $EBM_JAX_DATA_DIR, Debian's folder, cache, tfds, download
    # model
    model: str = "tutorial_cnn"  # "tutorial_cnn" or "course_cnn"
    features: int = 32
    # optimisation (the tutorial: Adam(1e-4, b1=0, b2=0.999), clip 0.1, lr x0.97 per epoch)
    epochs: int = 60
    max_steps: Optional[int] = None  # stop after this many train steps in total
    batch_size: int = 128
    learning_rate: float = 1e-4
    b1: float = 0.0
    b2: float = 0.999
    clip_norm: float = 0.1
    lr_decay_per_epoch: float = 0.97
    # loss
    alpha: float = 0.1
    real_noise: float = 0.005
    # sampler of the negatives: "langevin" (the tutorial's loop), "mala" or "hmc"; replay buffer
    sampler: str = "langevin"
    mcmc_steps: int = 60
    step_size: float = 10.0  # Langevin: gradient multiplier
    noise_scale: float = 0.005  # Langevin: noise standard deviation
    grad_clip: float = 0.03  # Langevin: gradient clamp
    mala_step_size: float = 1e-4  # MALA: drift step_size * grad, noise sqrt(2 * step_size)
    hmc_step_size: float = 1e-2
    hmc_leapfrog_steps: int = 5
    buffer_capacity: int = 8192
    reinit_prob: float = 0.05
    # evaluation and logging
    generation_steps: int = 256
    generation_snapshots: int = 8
    generation_chains: int = 8
    num_samples: int = 64
    num_noise_images: int = 1024
    eval_batch_size: int = 256
    max_eval_images: Optional[int] = None  # cap the test images used (None: the whole split)
    log_every: int = 10
    seed: int = 42

    def validate(self) -> None:
        """Raises ValueError with a readable message on nonsense settings."""
        positive = ("epochs", "batch_size", "mcmc_steps", "buffer_capacity", "generation_steps",
                    "generation_snapshots", "generation_chains", "num_samples", "num_noise_images",
                    "eval_batch_size", "log_every", "features", "hmc_leapfrog_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "step_size", "clip_norm", "grad_clip", "mala_step_size", "hmc_step_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("alpha", "real_noise", "noise_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.reinit_prob <= 1:
            raise ValueError(f"reinit_prob must be in [0, 1], got {self.reinit_prob}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.batch_size > self.buffer_capacity:
            raise ValueError(f"batch_size={self.batch_size} exceeds buffer_capacity={self.buffer_capacity}")
        if self.generation_steps % self.generation_snapshots:
            raise ValueError("generation_snapshots must divide generation_steps")
        if self.dataset not in ("mnist", "fashion_mnist"):
            raise ValueError(f"dataset must be 'mnist' or 'fashion_mnist', got {self.dataset!r}")
        if self.sampler not in ("langevin", "mala", "hmc"):
            raise ValueError(f"sampler must be 'langevin', 'mala' or 'hmc', got {self.sampler!r}")
        if self.model not in ("tutorial_cnn", "course_cnn"):
            raise ValueError(f"model must be 'tutorial_cnn' or 'course_cnn', got {self.model!r}")


def get_config(preset: str = "default") -> Config:
    """The experiment's settings.

    "tutorial": the UvA tutorial exactly: 60 epochs, batch 128, 60 Langevin steps of size 10,
    noise 0.005, gradient clamp 0.03, buffer 8192 with 5 % fresh noise, alpha 0.1,
    Adam(1e-4, b1=0, b2=0.999), global-norm clip 0.1, lr x0.97 per epoch. On the full 60k
    MNIST that is 28k steps (hours on a GPU-less machine; the tutorial's own run used a GPU).

        python -m ebm_jax.experiments.mnist --preset tutorial --workdir runs/tutorial

    "default": the same model, loss, sampler and optimizer, for 1,000 train steps (25.6 epochs of
    the 5k-image offline training subset in ../shared/data/mnist): about 8 minutes on a 2-core
    x86 CPU split into 2 devices (0.37 s per train step plus evaluation). See the README.

        python -m ebm_jax.experiments.mnist --data-dir ../shared/data/mnist
    """
    if preset == "tutorial":
        return Config()
    if preset == "default":
        return Config(epochs=60, max_steps=1000)
    raise ValueError(f"unknown preset {preset!r}; choose from {PRESETS}")
