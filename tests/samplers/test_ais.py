"""AIS against exact partition functions: enumerated RBMs (random and trained on MNIST),
Gaussians, and a trained 2-D energy's grid normaliser; the stated standard error's coverage."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import chi2

from ebm_jax import compose
from ebm_jax.energies import per_example
from ebm_jax.eval import density2d, likelihood
from ebm_jax.samplers import ais, hmc

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "rbm_mnist_12.npz")


def trained_rbm():
    f = np.load(FIXTURE)
    return {k: f[k] for k in "Wbc"}, f["base_logits"]


def random_rbm(num_hidden, seed=0):
    rng = np.random.default_rng(seed)
    return {"W": rng.normal(0, 0.1, (784, num_hidden)).astype(np.float32),
            "b": rng.normal(-1, 1, 784).astype(np.float32), "c": rng.normal(0, 1, num_hidden).astype(np.float32)}


def test_schedule_is_salakhutdinov_and_murrays():
    betas = ais.schedule()
    assert betas.shape == (14501,) and betas[0] == 0 and betas[-1] == 1
    steps = np.diff(betas.astype(np.float64))
    np.testing.assert_allclose(steps[:500], 1e-3, rtol=1e-3)
    np.testing.assert_allclose(steps[500:4500], 1e-4, rtol=1e-2)
    np.testing.assert_allclose(steps[4500:], 1e-5, rtol=5e-2)
    short = ais.schedule(146)
    assert short.shape == (146,) and np.all(np.diff(short) > 0) and short[0] == 0 and short[-1] == 1


def test_log_mean_exp_and_its_error():
    log_w = jnp.log(jnp.array([1.0, 2.0, 3.0, 6.0])) + 500.0  # would overflow as exp
    value, std_error, ess = ais.log_mean_exp(log_w)
    np.testing.assert_allclose(value, 500 + np.log(3.0), rtol=1e-6)
    np.testing.assert_allclose(std_error, np.std([1, 2, 3, 6], ddof=1) / (2 * 3.0), rtol=1e-5)
    np.testing.assert_allclose(ess, 144 / 50, rtol=1e-5)


def test_exact_log_z_is_the_enumeration_of_either_layer():
    """Tiny RBM: the brute-force sum over (v, h) equals both closed-form enumerations."""
    rng = np.random.default_rng(1)
    params = {"W": rng.normal(0, 1, (6, 4)), "b": rng.normal(0, 1, 6), "c": rng.normal(0, 1, 4)}
    vs = np.array(np.meshgrid(*[[0, 1]] * 6)).reshape(6, -1).T
    hs = np.array(np.meshgrid(*[[0, 1]] * 4)).reshape(4, -1).T
    energies = -(vs @ params["W"] @ hs.T) - (vs @ params["b"])[:, None] - (hs @ params["c"])[None]
    brute = np.log(np.exp(-energies).sum())
    np.testing.assert_allclose(likelihood.rbm_exact_log_z(params), brute, rtol=1e-6)
    transposed = {"W": params["W"].T, "b": params["c"], "c": params["b"]}
    np.testing.assert_allclose(likelihood.rbm_exact_log_z(transposed), brute, rtol=1e-6)
    with pytest.raises(ValueError, match="enumerates"):
        likelihood.rbm_exact_log_z({"W": np.zeros((40, 40)), "b": np.zeros(40), "c": np.zeros(40)})


@pytest.mark.parametrize("which", ["random_15", "random_20", "mnist_12", "mnist_12_base_rate"])
def test_rbm_ais_within_a_tenth_of_a_nat(which):
    """Random RBMs and the MNIST-trained one with the default base (the model's own factorised
    approximation); the trained one also with the base-rate base of its training data."""
    if which.startswith("mnist_12"):
        params, data_logits = trained_rbm()
    else:
        params = random_rbm(int(which.split("_")[1]))
    base = data_logits if which == "mnist_12_base_rate" else None
    exact = float(likelihood.rbm_exact_log_z(params))
    log_z, std_error = likelihood.rbm_ais_log_z(jax.random.key(0), params, 100, 3000, base_logits=base)
    assert abs(float(log_z) - exact) < 0.1
    assert 0 < float(std_error) < 0.1 / 3  # the estimate claims the precision the check asks for


def test_stated_standard_error_covers_at_the_expected_rate():
    """40 independent AIS runs (32 chains, 300 betas) on the trained RBM: z_i = error_i / stated
    error_i. If the stated errors are right, sum z_i^2 ~ chi^2(40) (two-sided 0.1 % test) and
    about 95 % of the errors lie within 2 stated errors (at least 80 %: 4.5 binomial sd)."""
    params, base = trained_rbm()
    exact = float(likelihood.rbm_exact_log_z(params))
    results = [likelihood.rbm_ais(jax.random.key(seed), params, 32, 300, base) for seed in range(40)]
    z = np.array([(float(r.log_z) - exact) / float(r.std_error) for r in results])
    assert chi2.ppf(0.0005, 40) < np.sum(z**2) < chi2.ppf(0.9995, 40)
    assert np.mean(np.abs(z) < 2) >= 0.8


def test_ais_on_a_gaussian():
    """N(mu, A) in 3-D from N(0, 9 I), HMC transitions: log Z = 3/2 log 2 pi + 1/2 log det A."""
    mu = jnp.array([1.0, -2.0, 0.5])
    cov = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    precision = jnp.linalg.inv(cov)
    exact = 1.5 * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(np.asarray(cov))[1]
    base = lambda x: 0.5 * jnp.sum(x**2) / 9.0
    target = lambda x: 0.5 * (x - mu) @ precision @ (x - mu)
    starts = 3.0 * jax.random.normal(jax.random.key(1), (1000, 3))
    run = jax.jit(lambda key: ais.run(key, hmc.spec(1, 0.3, 5), base, target, starts, 1.5 * np.log(2 * np.pi * 9.0),
                                      np.linspace(0, 1, 1000)))
    result = run(jax.random.key(0))
    assert abs(float(result.log_z) - exact) < 0.05
    assert float(result.std_error) < 0.05 / 3
    assert 500 < float(result.ess) <= 1000


def test_ais_on_a_trained_toy2d_energy_matches_its_grid_normaliser(tmp_path):
    """The toy2d experiment's MLP energy after 400 DSM steps on two moons; AIS on the box
    [-4, 4]^2 (uniform base, a steep quadratic wall outside it) against the 400 x 400 grid."""
    from ebm_jax.data import toy2d as toy_data
    from ebm_jax.experiments import toy2d
    from ebm_jax.train import energy_function

    config = toy2d.get_config(dataset="two_moons", objective="dsm", steps=400, log_every=100, checkpoint_every=400)
    data = np.asarray(toy_data.get_dataset("two_moons").sample(jax.random.key(0), 20000))
    model, state, _ = toy2d.train(config, toy2d.build_objective(config, data), data, str(tmp_path), progress=False)
    batch_energy_fn = energy_function(model.apply, state.params, state.model_state)
    half_width, stiffness = config.half_width, 1e4
    grid_log_z = float(density2d.log_normaliser(batch_energy_fn, half_width, 400))

    wall = lambda x: stiffness * jnp.sum(jnp.square(jnp.maximum(jnp.abs(x) - half_width, 0.0)))
    target = compose.conjunction(per_example(batch_energy_fn), wall)
    base_log_z = 2 * np.log(2 * half_width + np.sqrt(np.pi / stiffness))  # the wall's Gaussian tails included
    starts = jax.random.uniform(jax.random.key(3), (1000, 2), minval=-half_width, maxval=half_width)
    run = jax.jit(lambda key: ais.run(key, hmc.spec(1, 0.1, 10), wall, target, starts, base_log_z,
                                      np.linspace(0, 1, 1000)))
    result = run(jax.random.key(1))
    assert abs(float(result.log_z) - grid_log_z) < 0.05
    assert float(result.std_error) < 0.05 / 3


def test_bad_betas_are_rejected():
    spec = hmc.spec(1, 0.1, 2)
    energy = lambda x: jnp.sum(x**2)
    with pytest.raises(ValueError, match="increase"):
        ais.run(jax.random.key(0), spec, energy, energy, jnp.zeros((4, 2)), 0.0, [0.0, 0.5, 0.4, 1.0])
