import numpy as np
import pytest

from ebm_jax.samplers import diagnostics


def ar1(phi, chains, draws, seed=0):
    """Stationary AR(1) with unit variance: integrated autocorrelation time (1 + phi) / (1 - phi)."""
    rng = np.random.default_rng(seed)
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    noise = rng.normal(size=(chains, draws)) * np.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def test_ess_of_independent_draws_is_the_number_of_draws():
    draws = np.random.default_rng(0).normal(size=(8, 2000, 3))
    ess = diagnostics.effective_sample_size(draws)
    assert ess.shape == (3,)
    np.testing.assert_allclose(ess, 16000, rtol=0.1)


@pytest.mark.parametrize("phi", [0.5, -0.3])
def test_ess_of_ar1_matches_its_autocorrelation_time(phi):
    x = ar1(phi, 16, 20000)
    expected = x.size * (1 - phi) / (1 + phi)
    np.testing.assert_allclose(diagnostics.effective_sample_size(x), expected, rtol=0.1)


def test_split_rhat_flags_disagreeing_chains():
    rng = np.random.default_rng(1)
    agree = rng.normal(size=(4, 1000))
    disagree = agree + np.array([0.0, 0.0, 0.0, 3.0])[:, None]
    assert diagnostics.split_rhat(agree) < 1.01
    assert diagnostics.split_rhat(disagree) > 1.3
    # A drift of 3 over each chain, the same in every chain: only splitting sees it. The half
    # means sit at about +-0.75 (B/n ~ 0.56 + noise), the within-half variance is
    # 1 + 1.5^2/12 ~ 1.19, so R-hat ~ sqrt((1.19 + 0.56) / 1.19) ~ 1.21-1.24.
    trending = agree + np.linspace(0, 3, 1000)
    assert 1.15 < diagnostics.split_rhat(trending) < 1.35


def test_standard_error_and_bad_input():
    x = np.random.default_rng(2).normal(size=(8, 500))
    se = diagnostics.monte_carlo_standard_error(x[..., None])
    np.testing.assert_allclose(se, 1 / np.sqrt(4000), rtol=0.15)
    with pytest.raises(ValueError, match="chains"):
        diagnostics.effective_sample_size(np.zeros(10))
    with pytest.raises(ValueError, match="4 draws"):
        diagnostics.effective_sample_size(np.zeros((2, 3)))


def test_energy_chain_report_uses_the_tail():
    """Chains that start far apart and then agree: R-hat over the last half is about 1 (iid
    normal draws there: ESS near the number of draws), over everything it is not."""
    rng = np.random.default_rng(0)
    energies = rng.normal(size=(4, 400))
    energies[:, :200] += np.arange(4)[:, None] * 10.0
    report = diagnostics.energy_chain_report(energies)
    assert report["steps_used"] == 200 and abs(report["split_rhat"] - 1) < 0.02
    assert 0.7 * 800 < report["ess"] < 1.3 * 800
    assert diagnostics.energy_chain_report(energies, keep=1.0)["split_rhat"] > 2
    with pytest.raises(ValueError, match="steps >= 8"):
        diagnostics.energy_chain_report(energies[:, :5])
