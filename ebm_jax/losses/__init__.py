"""Training objectives as pure functions returning `(loss, metrics)`.

    contrastive      CD with the L2 energy term, the pairwise hinge       (energies of real/fake)
    regularisers     energy L2, gradient penalty                          (any objective)
    score_matching   denoising, multi-scale denoising, sliced, exact      (batched energy_fn)
    nce              noise-contrastive estimation with a learned log Z    (energies + log q)

Which samples enter a loss (replay buffer, persistent chains, CD-k from the data, noise) is
wired in `ebm_jax.train.objectives`.
"""

from ebm_jax.losses.contrastive import contrastive_divergence, energy_l2, hinge_contrastive
from ebm_jax.losses.nce import NoiseDistribution, fitted_gaussian, noise_contrastive_estimation, uniform_box
from ebm_jax.losses.regularisers import gradient_penalty, input_grad
from ebm_jax.losses.score_matching import (
    denoising_score_matching,
    exact_score_matching,
    multiscale_dsm,
    sliced_score_matching,
)

__all__ = [
    "NoiseDistribution",
    "contrastive_divergence",
    "denoising_score_matching",
    "energy_l2",
    "exact_score_matching",
    "fitted_gaussian",
    "gradient_penalty",
    "hinge_contrastive",
    "input_grad",
    "multiscale_dsm",
    "noise_contrastive_estimation",
    "sliced_score_matching",
    "uniform_box",
]
