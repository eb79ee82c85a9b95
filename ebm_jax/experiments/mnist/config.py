"""Configuration of the MNIST experiment: frozen dataclasses, presets via `get_config`.

Every field is a command-line flag (`ebm_jax.experiments.cli`): `--batch-size 64`, and for the
sampler section `--sampler hmc --sampler-num-steps 20 --sampler-step-size 0.01`.
"""

import dataclasses
from typing import Optional

from ebm_jax.experiments.cli import check_ranges, setting

PRESETS = ("default", "tutorial")
SAMPLERS = ("langevin", "mala", "hmc")


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """The sampler of the negatives; its step size for MALA / HMC comes from a dual-averaging
    warm-up on the initial model unless given."""

    name: str = setting("langevin", "sampler of the negatives: the tutorial's Langevin loop, MALA or HMC",
                        choices=SAMPLERS)
    num_steps: int = setting(60, "sampler steps per train step")
    step_size: Optional[float] = setting(None, "step size; None: 10 for Langevin (the tutorial's), a "
                                               "warm-up's for MALA and HMC")
    noise_scale: float = setting(0.005, "Langevin: noise standard deviation per step")
    grad_clip: float = setting(0.03, "Langevin: each gradient coordinate clamped to +-this")
    leapfrog_steps: int = setting(5, "HMC: leapfrog steps per move")
    target_acceptance: Optional[float] = setting(None, "MALA / HMC warm-up target; None: 0.574 (MALA), 0.8 (HMC)")
    warmup_steps: int = setting(200, "MALA / HMC: dual-averaging warm-up steps at the start")
    chain_group: Optional[int] = setting(None, "run each device's chains this many at a time (same numbers)")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = setting("mnist", "dataset", choices=("mnist", "fashion_mnist"))
    data_dir: Optional[str] = setting(None, "folder with the four IDX files; None: $EBM_JAX_DATA_DIR, "
                                            "Debian's folder, the cache, tfds, a download")
    model: str = setting("tutorial_cnn", "energy network", choices=("tutorial_cnn", "course_cnn"))
    features: int = setting(32, "TutorialCNN width c (layers c/2, c, 2c, 2c)")
    epochs: int = setting(60, "epochs of the training split")
    max_steps: Optional[int] = setting(None, "stop after this many train steps in total")
    batch_size: int = setting(128, "training batch size (= chains per step)")
    learning_rate: float = setting(1e-4, "Adam learning rate at epoch 0")
    b1: float = setting(0.0, "Adam b1")
    b2: float = setting(0.999, "Adam b2")
    clip_norm: float = setting(0.1, "global gradient-norm clip")
    lr_decay_per_epoch: float = setting(0.97, "learning rate factor per epoch")
    alpha: float = setting(0.1, "weight of the L2 energy term of the CD loss")
    real_noise: float = setting(0.005, "std of the Gaussian noise added to training images")
    buffer_capacity: int = setting(8192, "replay buffer size")
    reinit_prob: float = setting(0.05, "share of chains started from fresh noise")
    sampler: SamplerConfig = SamplerConfig()
    generation_steps: int = setting(256, "sampler steps when generating from noise")
    generation_snapshots: int = setting(8, "snapshots shown of each generation chain")
    generation_chains: int = setting(8, "chains in the generation figure")
    num_samples: int = setting(64, "samples generated from noise for the final report")
    quality_samples: int = setting(1024, "samples generated from noise for the sample-quality scores (0: none)")
    num_noise_images: int = setting(1024, "uniform-noise images in the evaluation")
    eval_batch_size: int = setting(256, "batch size of the evaluation passes")
    max_eval_images: Optional[int] = setting(None, "cap on the test images evaluated (None: all)")
    ood_benchmark: bool = setting(True, "run the OOD benchmark (eval.ood) in the final report")
    ood_data_dir: Optional[str] = setting(None, "the other dataset's IDX files for the OOD benchmark (Fashion-MNIST "
                                                "for an MNIST model, MNIST for a Fashion one); None: the folder "
                                                "beside --data-dir named for it, else the usual search")
    log_every: int = setting(10, "train metrics logged every this many steps")
    checkpoint_every: Optional[int] = setting(None, "save the latest state every this many steps; None: at each "
                                                    "epoch's end")
    max_rollbacks: int = setting(3, "on divergence, roll back to the newest checkpoint with a lower learning rate "
                                    "at most this many times (0: stop at the first)")
    rollback_factor: float = setting(0.5, "learning-rate factor of each rollback")
    seed: int = setting(42, "seed of the initialisation, batches and sampler")

    def validate(self) -> None:
        """Raises ValueError with a readable message on nonsense settings."""
        check_ranges(self, at_least_one=("epochs", "batch_size", "buffer_capacity", "generation_steps",
                                         "generation_snapshots", "generation_chains", "num_samples", "num_noise_images",
                                         "eval_batch_size", "log_every", "features", "sampler.num_steps",
                                         "sampler.leapfrog_steps", "sampler.warmup_steps", "max_steps",
                                         "max_eval_images", "sampler.chain_group", "checkpoint_every"),
                     positive=("learning_rate", "clip_norm", "sampler.grad_clip", "sampler.step_size",
                               "lr_decay_per_epoch"),
                     non_negative=("alpha", "real_noise", "sampler.noise_scale", "max_rollbacks"),
                     below_one=("b1", "b2"))
        if not 0 < self.rollback_factor < 1:
            raise ValueError(f"rollback_factor must be in (0, 1), got {self.rollback_factor}")
        if self.sampler.target_acceptance is not None and not 0 < self.sampler.target_acceptance < 1:
            raise ValueError(f"sampler.target_acceptance must be in (0, 1), got {self.sampler.target_acceptance}")
        if not 0 <= self.reinit_prob <= 1:
            raise ValueError(f"reinit_prob must be in [0, 1], got {self.reinit_prob}")
        if self.batch_size > self.buffer_capacity:
            raise ValueError(f"batch_size={self.batch_size} exceeds buffer_capacity={self.buffer_capacity}")
        if self.generation_steps % self.generation_snapshots:
            raise ValueError("generation_snapshots must divide generation_steps")
        if self.dataset not in ("mnist", "fashion_mnist"):
            raise ValueError(f"dataset must be 'mnist' or 'fashion_mnist', got {self.dataset!r}")
        if self.sampler.name not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler.name!r}")
        if self.model not in ("tutorial_cnn", "course_cnn"):
            raise ValueError(f"model must be 'tutorial_cnn' or 'course_cnn', got {self.model!r}")


# Fields a resumed run may change: how long it runs, what it looks at and how it saves, not what
# it trains; and the learning rate and step size, the remedies a divergence message suggests.
RESUME_MAY_CHANGE = ("data_dir", "epochs", "max_steps", "max_eval_images", "ood_benchmark", "ood_data_dir",
                     "quality_samples", "log_every", "generation_steps", "generation_snapshots", "generation_chains",
                     "num_samples", "num_noise_images", "eval_batch_size", "sampler.chain_group", "checkpoint_every",
                     "max_rollbacks", "rollback_factor", "learning_rate", "sampler.step_size")


def get_config(preset: str = "default") -> Config:
    """The experiment's settings.

    "tutorial": the UvA tutorial exactly: 60 epochs, batch 128, 60 Langevin steps of size 10,
    noise 0.005, gradient clamp 0.03, buffer 8192 with 5 % fresh noise, alpha 0.1,
    Adam(1e-4, b1=0, b2=0.999), global-norm clip 0.1, lr x0.97 per epoch. On the full 60k
    MNIST that is 28k steps (hours on a GPU-less machine).

        python -m ebm_jax.experiments.mnist --preset tutorial

    "default": the same model, loss, sampler and optimizer, for 1,000 train steps (25.6 epochs of
    the 5k-image offline training subset): about 8 minutes on a 2-core x86 CPU split into 2
    devices; the README gives the measured time and results.

        python -m ebm_jax.experiments.mnist --data-dir ../shared/data/mnist
    """
    if preset == "tutorial":
        return Config()
    if preset == "default":
        return Config(epochs=60, max_steps=1000)
    raise ValueError(f"unknown preset {preset!r}; choose from {PRESETS}")

