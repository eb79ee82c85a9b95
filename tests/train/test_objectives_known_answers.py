"""Known-answer tests of the score-matching and NCE losses, and spectral normalisation.

Tolerances come from sampling error: either an analytic standard error or the spread of
independent replicates (vmapped), never from tuning.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import losses
from ebm_jax.energies import MLPEnergy, ResNetEnergy, spectral_update


def _newton(loss, theta, iterations):
    def body(_, t):
        return t - jnp.linalg.solve(jax.hessian(loss)(t), jax.grad(loss)(t))

    return jax.lax.fori_loop(0, iterations, body, theta)


def test_dsm_on_gaussian_data_recovers_the_smoothed_covariance():
    """A quadratic energy E(x) = 0.5 x^T A x - b^T x fitted by DSM at noise sigma has
    A^{-1} -> Sigma + sigma^2 I (the score of the data convolved with the noise)."""
    cov = np.array([[1.0, 0.5], [0.5, 0.8]])
    mean = np.array([1.0, -1.0])
    sigma, n, replicates = 0.5, 4000, 24
    chol = jnp.asarray(np.linalg.cholesky(cov), jnp.float32)

    def fit(key):
        key_data, key_noise = jax.random.split(key)
        x = mean + jax.random.normal(key_data, (n, 2)) @ chol.T

        def energy(theta):
            a = jnp.array([[theta[0], theta[1]], [theta[1], theta[2]]])
            return lambda y: 0.5 * jnp.einsum("bi,ij,bj->b", y, a, y) - y @ theta[3:]

        # The loss is quadratic in theta, so one Newton step from anywhere is its exact minimiser.
        loss = lambda theta: losses.denoising_score_matching(key_noise, energy(theta), x, sigma)[0]
        theta = _newton(loss, jnp.array([1.0, 0.0, 1.0, 0.0, 0.0]), 2)
        a = jnp.array([[theta[0], theta[1]], [theta[1], theta[2]]])
        return jnp.linalg.inv(a)

    estimates = np.asarray(jax.jit(jax.vmap(fit))(jax.random.split(jax.random.key(0), replicates)))
    target = cov + sigma**2 * np.eye(2)
    se = estimates.std(0, ddof=1) / np.sqrt(replicates)
    z = (estimates.mean(0) - target) / se
    assert np.all(np.abs(z) < 4.0), (estimates.mean(0), target, se)
    # ... and the smoothing bias is resolved: the un-smoothed covariance is far outside the error.
    assert np.all(np.abs(estimates.mean(0) - cov)[np.diag_indices(2)] / se[np.diag_indices(2)] > 20)


@pytest.mark.parametrize("variance_reduced", [False, True])
def test_sliced_score_matching_is_unbiased_for_the_exact_loss(variance_reduced):
    model = MLPEnergy((16, 16))
    x = jax.random.normal(jax.random.key(1), (8, 3))
    params = model.init(jax.random.key(2), x)
    energy_fn = lambda y: model.apply(params, y)
    exact, _ = losses.exact_score_matching(energy_fn, x)
    keys = jax.random.split(jax.random.key(3), 4000)
    sliced = jax.jit(jax.vmap(lambda k: losses.sliced_score_matching(k, energy_fn, x, 1, variance_reduced)[0]))(keys)
    sliced = np.asarray(sliced)
    se = sliced.std(ddof=1) / np.sqrt(len(sliced))
    assert abs(sliced.mean() - float(exact)) < 4 * se, (sliced.mean(), float(exact), se)
    # The estimate is not trivially constant: a single projection is noisy.
    assert sliced.std() > 0


def test_ssm_with_many_projections_matches_the_exact_loss_and_its_gradient_direction():
    model = MLPEnergy((16, 16))
    x = jax.random.normal(jax.random.key(4), (8, 2))
    params = model.init(jax.random.key(5), x)
    exact_loss = lambda p: losses.exact_score_matching(lambda y: model.apply(p, y), x)[0]
    sliced_loss = lambda p: losses.sliced_score_matching(jax.random.key(6), lambda y: model.apply(p, y), x, 2000, True)[0]
    g_exact = jax.flatten_util.ravel_pytree(jax.grad(exact_loss)(params))[0]
    g_sliced = jax.flatten_util.ravel_pytree(jax.grad(sliced_loss)(params))[0]
    cosine = float(g_exact @ g_sliced / (jnp.linalg.norm(g_exact) * jnp.linalg.norm(g_sliced)))
    assert cosine > 0.95, cosine


def test_nce_recovers_mean_variance_and_log_normaliser_of_1d_gaussian():
    """E(x) = 0.5 a x^2 - b x with a learned log Z; the NCE loss is convex in (a, b, log Z)."""
    m, s, n, nu, replicates = 1.5, 0.7, 4000, 4, 32
    pool = m + s * np.random.default_rng(0).normal(size=(20000, 1))
    noise = losses.fitted_gaussian(pool, scale=1.5)
    var_q, mean_q = 1.5**2 * pool.var(ddof=1), pool.mean()
    start = jnp.array([1 / var_q, mean_q / var_q, 0.5 * np.log(2 * np.pi * var_q) + 0.5 * mean_q**2 / var_q])

    def fit(key):
        key_data, key_noise = jax.random.split(key)
        x = m + s * jax.random.normal(key_data, (n, 1))
        y = noise.sample(key_noise, nu * n)
        log_q_x, log_q_y = noise.log_prob(x), noise.log_prob(y)

        def loss(theta):
            energy = lambda u: 0.5 * theta[0] * u[:, 0] ** 2 - theta[1] * u[:, 0]
            return losses.noise_contrastive_estimation(energy(x), energy(y), log_q_x, log_q_y, theta[2])[0]

        # Start at the noise's own parameters, where every log-odds equals -log nu.
        theta = _newton(loss, start, 30)
        a, b, log_z = theta
        return jnp.stack([b / a, 1.0 / a, log_z])

    estimates = np.asarray(jax.jit(jax.vmap(fit))(jax.random.split(jax.random.key(7), replicates)))
    truth = np.array([m, s**2, np.log(np.sqrt(2 * np.pi) * s) + 0.5 * m**2 / s**2])
    se = estimates.std(0, ddof=1) / np.sqrt(replicates)
    assert np.all(np.isfinite(estimates))
    assert np.all(np.abs(estimates.mean(0) - truth) < 4 * se), (estimates.mean(0), truth, se)
    # Each replicate is a real estimate, within a few of its own standard deviations of the truth.
    assert np.all(np.abs(estimates - truth) < 5 * estimates.std(0, ddof=1))


def test_fitted_gaussian_noise_log_prob_matches_its_samples_and_rejects_bad_data():
    data = np.random.default_rng(1).normal(size=(500, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])
    noise = losses.fitted_gaussian(data)
    samples = noise.sample(jax.random.key(0), 50000)
    np.testing.assert_allclose(np.cov(np.asarray(samples), rowvar=False), np.cov(data, rowvar=False), atol=0.03)
    # log_prob integrates to 1 on a grid
    axis = np.linspace(-6, 6, 301)
    grid = jnp.asarray(np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2), jnp.float32)
    mass = float(jnp.sum(jnp.exp(noise.log_prob(grid))) * (axis[1] - axis[0]) ** 2)
    assert abs(mass - 1.0) < 1e-3
    with pytest.raises(ValueError, match="NaN"):
        losses.fitted_gaussian(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match="n >= 2"):
        losses.fitted_gaussian(np.zeros((1, 2)))


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (2, 32, 32, 3)])
def test_spectral_norm_power_iteration_finds_the_top_singular_value(shape):
    model = ResNetEnergy(widths=(8, 16), groups=4)
    x = jax.random.normal(jax.random.key(0), shape)
    variables = dict(model.init(jax.random.key(1), x))
    assert model.apply(variables, x).shape == (shape[0],)
    update = jax.jit(spectral_update(model))
    for _ in range(30):
        variables.update(update(variables, x))
    stats = jax.tree_util.tree_flatten_with_path(variables["batch_stats"])[0]
    sigmas = {jax.tree_util.keystr(p): float(v) for p, v in stats if jax.tree_util.keystr(p).endswith("sigma']")}
    params = {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(variables["params"])[0]}
    checked = 0
    for path, kernel in params.items():
        if not path.endswith("['kernel']"):
            continue
        layer = path.split("'")[1]  # e.g. Conv_3
        (sigma,) = [v for k, v in sigmas.items() if f"'{layer}/kernel/sigma'" in k]
        matrix = kernel.reshape(-1, kernel.shape[-1])
        top = np.linalg.svd(matrix, compute_uv=False)[0]
        normalised_top = np.linalg.svd(matrix / sigma, compute_uv=False)[0]
        assert abs(normalised_top - 1.0) < 1e-2, (layer, sigma, top)
        checked += 1
    assert checked == 7  # 6 convs (stem, 2 per block, 1 shortcut) and the head


def test_spectral_norm_bounds_the_energy_lipschitz_growth():
    """With every layer normalised the un-normalised net can be made arbitrarily steep by
    scaling its weights; the normalised one cannot: scaling all kernels x10 leaves E unchanged."""
    model = ResNetEnergy(widths=(8,), groups=4)
    x = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
    variables = dict(model.init(jax.random.key(1), x))
    scaled = dict(variables, params=jax.tree_util.tree_map_with_path(
        lambda p, v: v * 10 if jax.tree_util.keystr(p).endswith("['kernel']") else v, variables["params"]))
    # The stored u is a direction, unaffected by scaling, so sigma scales by 10 too.
    np.testing.assert_allclose(model.apply(variables, x), model.apply(scaled, x), rtol=1e-4, atol=1e-5)
    plain = ResNetEnergy(widths=(8,), groups=4, spectral_norm=False)
    pv = plain.init(jax.random.key(1), x)
    assert "batch_stats" not in pv
