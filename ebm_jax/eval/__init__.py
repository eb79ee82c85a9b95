"""Evaluation: energies over whole datasets, the tutorial's OOD analysis, and figures."""

from ebm_jax.eval.analysis import dataset_energies, flipped, noisy, ood_analysis, shrunk

__all__ = ["dataset_energies", "flipped", "noisy", "ood_analysis", "shrunk"]
