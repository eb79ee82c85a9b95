"""Evaluation: energies over whole datasets and the tutorial's edits (`analysis`), OOD
detection metrics and the OOD benchmark (`ood`), sample-quality scores on features
(`sample_quality`: Frechet distance, KID, classifier score), RBM log-likelihoods (`likelihood`:
exact log Z, AIS), 2-D density scores (`density2d`) and figures (`plots`)."""

from ebm_jax.eval import likelihood, ood, sample_quality
from ebm_jax.eval.analysis import dataset_energies, flipped, noisy, ood_analysis, shrunk

__all__ = ["likelihood", "ood", "sample_quality", "dataset_energies", "flipped", "noisy", "ood_analysis", "shrunk"]
