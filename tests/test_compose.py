"""The energy algebra against known answers: product, mixture and conditional Gaussians, and
tempered variances; Monte Carlo tolerances from the standard error of independent chains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import compose
from ebm_jax.eval import density2d
from ebm_jax.samplers import mala, sample

NUM_CHAINS = 4000


def gaussian(mean, std):
    return lambda x: 0.5 * jnp.sum(jnp.square((x - mean) / std))


def final_draws(energy_fn, dim, step_size=0.2, num_steps=400, key=0):
    """Final positions of independent MALA chains (mixed after `num_steps` on these unit-scale
    targets), so draws are independent and standard errors are those of iid samples."""
    starts = jnp.zeros((NUM_CHAINS, dim))
    final, _, infos = jax.jit(lambda k: sample(k, mala.spec(num_steps, step_size), energy_fn, starts))(jax.random.key(key))
    assert 0.5 < float(jnp.mean(infos.acceptance_rate)) < 0.99
    return np.asarray(final.position, np.float64)


def assert_gaussian(draws, mean, var):
    """Mean and variance within 5 standard errors (n iid draws)."""
    n = len(draws)
    assert abs(draws.mean() - mean) < 5 * np.sqrt(var / n), (draws.mean(), mean)
    assert abs(draws.var(ddof=1) - var) < 5 * var * np.sqrt(2.0 / (n - 1)), (draws.var(ddof=1), var)


def test_conjunction_samples_the_product_gaussian():
    """N(1, 1) AND N(-1, 0.5^2): precision 1 + 4 = 5, mean (1 - 4) / 5 = -0.6."""
    energy = compose.conjunction(gaussian(1.0, 1.0), gaussian(-1.0, 0.5))
    assert_gaussian(final_draws(energy, 1)[:, 0], -0.6, 1 / 5)


def test_temper_multiplies_a_gaussians_variance():
    for temperature in (0.5, 3.0):
        draws = final_draws(compose.temper(gaussian(0.5, 1.0), temperature), 1, step_size=0.2 * temperature)
        assert_gaussian(draws[:, 0], 0.5, temperature)


def test_clamp_samples_the_exact_conditional_gaussian():
    """(x0, x1) ~ N(0, [[1, rho], [rho, 1]]) with x1 held at 1.5: x0 ~ N(1.5 rho, 1 - rho^2)."""
    rho = 0.8
    precision = jnp.linalg.inv(jnp.array([[1.0, rho], [rho, 1.0]]))
    joint = lambda x: 0.5 * x @ precision @ x
    mask, observed = jnp.array([False, True]), jnp.array([0.0, 1.5])
    draws = final_draws(compose.clamp(joint, mask, observed), 2, step_size=0.1)
    filled = np.asarray(jax.vmap(lambda x: compose.fill(mask, observed, x))(jnp.asarray(draws, jnp.float32)))
    assert np.all(filled[:, 1] == 1.5)
    assert_gaussian(filled[:, 0], 1.5 * rho, 1 - rho**2)


def test_disjunction_of_separated_gaussians_has_their_exact_weights():
    """OR of exp(-E1) and exp(-E2) with normalisers Z1 = 2 pi 0.3^2 e^1, Z2 = 2 pi 0.5^2: mode 1
    holds Z1 / (Z1 + Z2) of the mass. Exact draws from the gridded density (no sampler error;
    the modes are 10 std apart, no MCMC would cross), binomial standard error."""
    e1 = lambda x: gaussian(jnp.array([2.0, 0.0]), 0.3)(x) - 1.0
    e2 = gaussian(jnp.array([-2.0, 0.0]), 0.5)
    energy = compose.disjunction(e1, e2)
    z1, z2 = 2 * np.pi * 0.3**2 * np.e, 2 * np.pi * 0.5**2
    expected = z1 / (z1 + z2)
    n = 20000
    draws = np.asarray(density2d.grid_samples(jax.random.key(0), jax.vmap(energy), n, 4.0, 400))
    share = float(np.mean(draws[:, 0] > 0))
    assert abs(share - expected) < 5 * np.sqrt(expected * (1 - expected) / n), (share, expected)


def test_difference_of_a_mixture_and_one_component_is_the_other_component():
    """p = w1 N1 + w2 N2 minus its part w1 N1 is w2 N2, to float32 rounding: the difference
    E - E_part carries an error of about eps |E| and log(1 - p(1 | x)) divides it by
    1 - p(1 | x), so that is the tolerance. Where p(1 | x) rounds to 1 the energy stays finite
    and high."""
    log_w1, log_w2 = np.log(0.3), np.log(0.7)
    part = lambda x: gaussian(-1.0, 1.0)(x) - log_w1
    other = lambda x: gaussian(2.0, 0.5)(x) - log_w2
    whole = compose.disjunction(part, other)
    x = jnp.linspace(-0.5, 3.0, 36)[:, None]
    rest = np.asarray(jax.vmap(compose.difference(whole, part))(x), np.float64)
    e_whole, e_part = (np.asarray(jax.vmap(fn)(x), np.float64) for fn in (whole, part))
    expected = np.asarray(jax.vmap(other)(x), np.float64)
    remainder = -np.expm1(e_whole - e_part)                  # 1 - p(1 | x), from 1e-6 to 1 here
    eps = np.finfo(np.float32).eps
    tolerance = 4 * eps * (np.abs(expected) + np.maximum(np.abs(e_whole), np.abs(e_part)) / remainder)
    assert np.all(np.abs(rest - expected) <= tolerance), np.max(np.abs(rest - expected) / tolerance)
    assert remainder.min() < 1e-4 and remainder.max() > 0.99
    far = jnp.array([-30.0])                                 # p(1 | x) = 1 in float32
    assert np.isfinite(compose.difference(whole, part)(far)) and compose.difference(whole, part)(far) > whole(far) + 10


def test_negation_interpolation_and_condition_are_their_formulas():
    e1, e2 = gaussian(0.0, 1.0), gaussian(1.0, 2.0)
    x = jnp.array([0.7, -0.3])
    np.testing.assert_allclose(compose.negation(e1, e2, 0.5)(x), e1(x) - 0.5 * e2(x), rtol=1e-6)
    np.testing.assert_allclose(compose.interpolate(e1, e2, 0.25)(x), 0.75 * e1(x) + 0.25 * e2(x), rtol=1e-6)
    conditional = lambda x, y: jnp.sum(x) * y
    np.testing.assert_allclose(compose.condition(conditional, 3.0)(x), 1.2, rtol=1e-6)
    # a traced beta passes the check (AIS scans over it); a concrete one out of range does not
    path = jax.jit(lambda beta: compose.interpolate(e1, e2, beta)(x))
    np.testing.assert_allclose(path(0.25), 0.75 * e1(x) + 0.25 * e2(x), rtol=1e-6)
    with pytest.raises(ValueError, match="beta"):
        compose.interpolate(e1, e2, 1.5)
    with pytest.raises(ValueError, match="temperature"):
        compose.temper(e1, 0.0)
