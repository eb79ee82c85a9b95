"""Configuration of the RBM experiment on binarized MNIST (a frozen dataclass, as the others).

    python -m ebm_jax.experiments.rbm [--objective cd1|cd25|pcd|pt] [--dbn 500 500] [any flag]

The default (PCD-1, 500 hidden units, 100 epochs of the 5k-image offline training subset, AIS
with 100 chains and 14,501 betas) finished in about two minutes on the 2-core CPU it was made on
(the README's RBM section has the measured figures and the command).
"""

import dataclasses
from typing import Optional, Tuple

from ebm_jax.experiments.cli import check_ranges, setting

OBJECTIVES = ("cd1", "cd25", "pcd", "pt")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = setting("mnist", "dataset (binarized stochastically)", choices=("mnist", "fashion_mnist"))
    data_dir: Optional[str] = setting(None, "folder with the four IDX files; None: $EBM_JAX_DATA_DIR, "
                                            "Debian's folder, the cache, tfds, a download")
    objective: str = setting("pcd", "negatives: CD-1, CD-25, PCD-1 or PCD-1 with parallel tempering", choices=OBJECTIVES)
    num_hidden: int = setting(500, "hidden units")
    epochs: int = setting(100, "epochs of the training split")
    max_steps: Optional[int] = setting(None, "stop after this many train steps in total")
    batch_size: int = setting(100, "training batch size (= persistent chains for pcd and pt)")
    learning_rate: float = setting(0.1, "SGD learning rate at the start, decayed linearly to 0 over the run")
    momentum: float = setting(0.0, "SGD momentum (0: none)")
    weight_decay: float = setting(1e-4, "L2 weight decay on W (optax.add_decayed_weights)")
    init_scale: float = setting(0.01, "W starts as N(0, init_scale^2); b at the data's base-rate logits")
    pt_replicas: int = setting(5, "pt: temperatures per persistent chain")
    pt_min_beta: float = setting(0.8, "pt: smallest inverse temperature (geometric spacing from 1)")
    dbn: Tuple[int, ...] = setting((), "layer sizes of a DBN trained greedily after the RBM, e.g. 500 500 "
                                       "(the first must be num_hidden: the RBM is its first layer)")
    ais_chains: int = setting(100, "AIS chains")
    ais_betas: int = setting(14501, "AIS inverse temperatures (Salakhutdinov & Murray's spacing)")
    num_samples: int = setting(100, "Gibbs / PT chains drawn for the sample figures")
    sample_steps: int = setting(1000, "Gibbs sweeps of each sample chain, from base-rate noise")
    metric_images: int = setting(1000, "train and test images for the reconstruction / pseudo-likelihood curves")
    log_every: int = setting(50, "train metrics and the curves every this many steps")
    seed: int = setting(0, "seed of the binarization, initialisation, batches and samplers")

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {OBJECTIVES}")
        check_ranges(self, at_least_one=("num_hidden", "epochs", "max_steps", "batch_size", "num_samples",
                                         "sample_steps", "metric_images", "log_every"),
                     positive=("learning_rate", "init_scale"), non_negative=("momentum", "weight_decay"))
        if self.momentum >= 1:
            raise ValueError(f"momentum must be below 1, got {self.momentum}")
        if self.pt_replicas < 2 or not 0 < self.pt_min_beta < 1:
            raise ValueError("pt_replicas must be >= 2 and pt_min_beta in (0, 1)")
        if self.ais_chains < 2 or self.ais_betas < 4:
            raise ValueError("ais_chains must be >= 2 and ais_betas >= 4")
        if self.dbn and (len(self.dbn) < 2 or self.dbn[0] != self.num_hidden or min(self.dbn) < 1):
            raise ValueError(f"dbn must list >= 2 layer sizes starting with num_hidden={self.num_hidden}, got {self.dbn}")


def get_config(**overrides) -> Config:
    """The defaults above with `overrides`, validated."""
    config = dataclasses.replace(Config(), **overrides)
    config.validate()
    return config


# Fields a resumed run may change: evaluation and logging, not what it trains.
RESUME_MAY_CHANGE = ("data_dir", "max_steps", "dbn", "ais_chains", "ais_betas", "num_samples", "sample_steps",
                     "metric_images", "log_every")
