"""Test helpers for the sampler tests: the analytic targets and a Bonferroni critical value."""

from scipy.stats import norm

from ebm_jax.energies.analytic import gaussian, gaussian_mixture_1d, ill_conditioned_covariance  # noqa: F401


def z_critical(num_tests: int, family_alpha: float = 1e-3) -> float:
    """Bonferroni-corrected two-sided critical value."""
    return float(norm.isf(family_alpha / (2 * num_tests)))
