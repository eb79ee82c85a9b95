"""Configuration of the JEM experiment (a frozen dataclass; every field is a flag).

    python -m ebm_jax.experiments.jem [--dataset mnist|fashion_mnist] [any flag]

The defaults are JEM's sampler and buffer (Grathwohl et al. 2020: 20 SGLD steps of size 1 with
noise 0.01, a replay buffer of 10,000 with 5 % fresh uniform noise, data noise 0.03, Adam after a
linear warm-up) on a small network, the tutorial's CNN with 10 outputs, sized to finish on a
2-core CPU on the offline data, with two changes for that network: Adam 1e-3 (JEM's 1e-4 is for
a wide ResNet; this CNN barely learned in 300 steps with it) and the L2 energy penalty alpha =
0.1 with a gradient-norm clip (without them the energies of data ran away from the samples'
within 300 steps and the classifier stayed at chance). The same network is then trained with
cross-entropy alone (`--no-baseline` skips it) and both are evaluated side by side.
"""

import dataclasses
from typing import Optional

from ebm_jax.experiments.cli import check_ranges, setting

BACKBONES = ("tutorial_cnn", "resnet")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = setting("mnist", "dataset", choices=("mnist", "fashion_mnist"))
    data_dir: Optional[str] = setting(None, "folder with the four IDX files; None: $EBM_JAX_DATA_DIR, "
                                            "Debian's folder, the cache, tfds, a download")
    ood_data_dir: Optional[str] = setting(None, "the other dataset's IDX files for the OOD benchmark; None: the "
                                                "folder beside --data-dir named for it, else the usual search")
    backbone: str = setting("tutorial_cnn", "logits network: the tutorial's CNN with 10 outputs, or the "
                                            "GroupNorm ResNet (no spectral norm)", choices=BACKBONES)
    features: int = setting(32, "tutorial_cnn: width c; resnet: the first stage's width (then 2c, 4c)")
    epochs: int = setting(30, "epochs of the training split")
    max_steps: Optional[int] = setting(None, "stop after this many train steps in total")
    batch_size: int = setting(64, "training batch size (= SGLD chains per step)")
    learning_rate: float = setting(1e-3, "Adam learning rate after the warm-up")
    warmup_steps: int = setting(100, "linear learning-rate warm-up from 0 (JEM's stabiliser)")
    clip_norm: float = setting(1.0, "global gradient-norm clip")
    px_weight: float = setting(1.0, "weight of the log p(x) term (CD on E(x)); 0: cross-entropy only")
    pxy_weight: float = setting(0.0, "weight of the log p(x | y) term (CD on E(x, y), SGLD chains of the batch's "
                                     "labels from per-class buffers of buffer_capacity / 10); 0: off (JEM's default)")
    alpha: float = setting(0.1, "L2 penalty on the energies of data and samples (a stabiliser; JEM: 0)")
    real_noise: float = setting(0.03, "std of the Gaussian noise added to training images (JEM's)")
    sgld_steps: int = setting(20, "SGLD steps per train step")
    sgld_step_size: float = setting(1.0, "SGLD gradient step: x <- x - step * grad E(x) + noise * z")
    sgld_noise: float = setting(0.01, "SGLD noise std")
    buffer_capacity: int = setting(10_000, "replay buffer size")
    reinit_prob: float = setting(0.05, "share of chains started from fresh uniform noise")
    baseline: bool = setting(True, "also train the same network with cross-entropy alone, for the side-by-side table")
    sample_steps: int = setting(200, "SGLD steps of the class-conditional samples from uniform noise")
    samples_per_class: int = setting(10, "class-conditional samples per class (a 10-row grid)")
    steer_images: int = setting(500, "test digits inpainted and denoised; samples per composition (OR / NOT / AND)")
    denoise_steps: int = setting(20, "gradient steps on E(x) that denoise (x <- x - step * grad E(x))")
    denoise_step_size: float = setting(1.0, "their step size")
    eval_batch_size: int = setting(500, "batch size of the evaluation passes")
    max_eval_images: Optional[int] = setting(None, "cap on the test images evaluated (None: all)")
    log_every: int = setting(20, "train metrics logged every this many steps")
    checkpoint_every: Optional[int] = setting(None, "save the latest state every this many steps; None: at each "
                                                    "epoch's end")
    max_rollbacks: int = setting(3, "on divergence, roll back to the newest checkpoint with a lower learning rate "
                                    "at most this many times (0: stop at the first)")
    rollback_factor: float = setting(0.5, "learning-rate factor of each rollback")
    seed: int = setting(0, "seed of the initialisation, batches and sampler")

    def validate(self) -> None:
        check_ranges(self, at_least_one=("features", "epochs", "max_steps", "batch_size", "sgld_steps",
                                         "buffer_capacity", "sample_steps", "samples_per_class", "eval_batch_size",
                                         "steer_images", "denoise_steps",
                                         "max_eval_images", "log_every", "checkpoint_every"),
                     positive=("learning_rate", "clip_norm", "sgld_step_size", "denoise_step_size"),
                     non_negative=("warmup_steps", "px_weight", "pxy_weight", "alpha", "real_noise", "sgld_noise",
                                   "max_rollbacks"))
        if not 0 < self.rollback_factor < 1:
            raise ValueError(f"rollback_factor must be in (0, 1), got {self.rollback_factor}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if not 0 <= self.reinit_prob <= 1:
            raise ValueError(f"reinit_prob must be in [0, 1], got {self.reinit_prob}")
        if self.batch_size > self.buffer_capacity:
            raise ValueError(f"batch_size={self.batch_size} exceeds buffer_capacity={self.buffer_capacity}")
        if self.pxy_weight and self.batch_size > self.buffer_capacity // 10:
            raise ValueError(f"with --pxy-weight each class's buffer holds buffer_capacity / 10 = "
                             f"{self.buffer_capacity // 10}, less than batch_size={self.batch_size}")


# Fields a resumed run may change: how long it runs, what it looks at and how it saves, not what
# it trains; and the learning rate and SGLD step, the remedies a divergence message suggests.
RESUME_MAY_CHANGE = ("data_dir", "ood_data_dir", "epochs", "max_steps", "baseline", "sample_steps",
                     "samples_per_class", "steer_images", "denoise_steps", "denoise_step_size", "eval_batch_size",
                     "max_eval_images", "log_every", "checkpoint_every", "max_rollbacks", "rollback_factor",
                     "learning_rate", "sgld_step_size")
