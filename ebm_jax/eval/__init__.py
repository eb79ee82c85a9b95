"""Evaluation: energies over whole datasets, the tutorial's OOD analysis, figures, and RBM
log-likelihoods (`likelihood`: exact log Z, AIS)."""

from ebm_jax.eval import likelihood
from ebm_jax.eval.analysis import dataset_energies, flipped, noisy, ood_analysis, shrunk

__all__ = ["likelihood", "dataset_energies", "flipped", "noisy", "ood_analysis", "shrunk"]
