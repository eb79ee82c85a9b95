"""Samplers against known answers; tolerances from Monte Carlo standard errors (ESS)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.samplers import adaptation, annealed, diagnostics, hmc, integrators, langevin, mala, run_chains, tempering
from samplers_targets import gaussian, gaussian_mixture_1d, ill_conditioned_covariance, z_critical


def _sample(kernel, init, energy_fn, starts, warmup_steps, draws, target, initial_step_size, thin=1, **params):
    """Dual-averaging warm-up from `starts`, then `draws` steps keeping every `thin`-th;
    returns (draws [C, T, d], infos, step_size)."""
    key_warm, key_run = jax.random.split(jax.random.key(0))
    states = jax.vmap(lambda x: init(x, energy_fn))(starts)
    step_size, states = jax.jit(lambda k, s: adaptation.warmup(
        k, kernel, s, energy_fn, warmup_steps, initial_step_size, target, **params))(key_warm, states)
    step = lambda k, s: kernel(k, s, energy_fn, step_size, **params)
    _, trace, infos = jax.jit(lambda k, s: run_chains(k, step, s, draws, thin=thin))(key_run, states)
    return np.swapaxes(np.asarray(trace.position, np.float64), 0, 1), infos, float(step_size)


def _check_moments(draws, cov, num_tests):
    """z-tests of E[x_d] = 0 and E[x_d^2] = cov_dd with SEs from the multi-chain ESS."""
    z = z_critical(num_tests)
    for quantity, expected in ((draws, np.zeros(cov.shape[0])), (draws**2, np.diag(cov))):
        se = diagnostics.monte_carlo_standard_error(quantity)
        estimate = quantity.reshape(-1, cov.shape[0]).mean(axis=0)
        assert np.all(np.abs(estimate - expected) < z * se), (np.max(np.abs(estimate - expected) / se), z)
    assert np.all(diagnostics.split_rhat(draws) < 1.05)


CORR_2D = np.array([[1.0, 0.9], [0.9, 1.0]])


@pytest.mark.parametrize("name", ["mala", "hmc"])
def test_correlated_2d_gaussian(name):
    energy_fn = gaussian(CORR_2D)
    starts = jnp.full((64, 2), 3.0)
    if name == "mala":
        draws, infos, _ = _sample(mala.build_kernel(), mala.init, energy_fn, starts, 500, 2000, 0.574, 0.1)
        target = 0.574
    else:
        draws, infos, _ = _sample(hmc.build_kernel(), hmc.init, energy_fn, starts, 500, 1000, 0.8, 0.1,
                                  num_integration_steps=10)
        target = 0.8
    _check_moments(draws, CORR_2D, num_tests=2 * 2 * 2)
    assert abs(diagnostics.acceptance_rate(infos) - target) < 0.1
    # The correlation too: E[x1 x2] = 0.9.
    prod = draws[..., 0] * draws[..., 1]
    se = diagnostics.monte_carlo_standard_error(prod[..., None])[0]
    assert abs(prod.mean() - 0.9) < z_critical(8) * se


@pytest.mark.parametrize("name", ["mala", "hmc"])
def test_50d_ill_conditioned_gaussian(name):
    cov = ill_conditioned_covariance(50, 100.0)
    energy_fn = gaussian(cov)
    starts = jnp.asarray(np.random.default_rng(1).normal(size=(128, 50)), jnp.float32)
    if name == "mala":
        # MALA's step is set by the narrowest direction (sd 0.32); the widest (sd 3.2) needs
        # thousands of steps to decorrelate.
        draws, infos, _ = _sample(mala.build_kernel(), mala.init, energy_fn, starts, 2000, 8000, 0.574, 0.01, thin=4)
        target = 0.574
    else:
        draws, infos, _ = _sample(hmc.build_kernel(), hmc.init, energy_fn, starts, 500, 1000, 0.8, 0.1,
                                  num_integration_steps=20)
        target = 0.8
    _check_moments(draws, cov, num_tests=2 * 50 * 2)
    assert abs(diagnostics.acceptance_rate(infos) - target) < 0.1
    assert not np.asarray(getattr(infos, "is_divergent", jnp.zeros(1, bool))).any()


def test_leapfrog_reversible_and_second_order():
    energy_fn = gaussian(np.diag([1.0, 0.25]))
    x0, p0 = jnp.array([1.0, -0.5]), jnp.array([0.3, 1.2])

    def start(x, p):
        e, g = jax.value_and_grad(energy_fn)(x)
        return integrators.IntegratorState(x, p, e, g)

    forward = integrators.leapfrog(start(x0, p0), energy_fn, 0.1, 25)
    back = integrators.leapfrog(start(forward.position, -forward.momentum), energy_fn, 0.1, 25)
    np.testing.assert_allclose(back.position, x0, atol=1e-5)
    np.testing.assert_allclose(-back.momentum, p0, atol=1e-5)

    def energy_error(eps):  # |H(end) - H(start)| over a fixed time 2.0
        end = integrators.leapfrog(start(x0, p0), energy_fn, eps, int(round(2.0 / eps)))
        h = lambda s: s.energy + integrators.kinetic_energy(s.momentum)
        return abs(float(h(end) - h(start(x0, p0))))

    ratio = energy_error(0.1) / energy_error(0.05)
    assert 3.0 < ratio < 5.0  # halving eps divides the error by ~4: O(eps^2)


def test_replica_exchange_recovers_mixture_weights_where_mala_does_not():
    """Modes at -6 and +6 (weights 0.3, 0.7): from the left mode the barrier E(0) - E(-6) is
    about 17 nats. Replica exchange (8 temperatures, MALA inside) recovers P(x > 0) = 0.7 within
    its Monte Carlo error; plain Langevin and plain MALA from the left mode, with the same
    number of gradient evaluations, stay in the left mode (escape rate ~ exp(-17) per step)."""
    energy_fn = gaussian_mixture_1d()
    barrier = float(energy_fn(jnp.array(0.0)) - energy_fn(jnp.array(-6.0)))
    assert barrier > 10
    num_systems, num_replicas, steps = 128, 8, 2500
    betas = tempering.geometric_betas(num_replicas, 0.02)
    kernel = tempering.build_kernel(mala.build_kernel())
    per_replica = {"step_size": 0.5 / betas}
    starts = jnp.full((num_systems, num_replicas), -6.0)
    states = jax.vmap(lambda x: tempering.init(x, energy_fn, betas, mala.init))(starts)
    step = lambda k, s: kernel(k, s, energy_fn, betas, per_replica)
    _, trace, infos = jax.jit(lambda k, s: run_chains(k, step, s, steps, thin=1))(jax.random.key(3), states)
    x = np.asarray(trace.replicas.position[500:, :, 0], np.float64).T  # replica 0, after burn-in
    right = (x > 0).astype(np.float64)
    se = diagnostics.monte_carlo_standard_error(right[..., None])[0]
    assert abs(right.mean() - 0.7) < 4 * se and se < 0.03
    swap_rate = np.asarray(infos.swap_acceptance).sum(axis=(0, 1)) / np.asarray(infos.swap_proposed).sum(axis=(0, 1))
    assert swap_rate.shape == (num_replicas - 1,) and np.all(swap_rate > 0.05)

    gradient_budget = num_replicas * steps
    for plain in (langevin.langevin(energy_fn, step_size=0.25), mala.mala(energy_fn, 0.5)):
        _, plain_trace, _ = jax.jit(lambda k, s: run_chains(k, plain.step, s, gradient_budget, thin=100))(
            jax.random.key(4), jax.vmap(plain.init)(jnp.full((num_systems,), -6.0)))
        assert float((np.asarray(plain_trace.position) > 0).mean()) < 0.01


def test_swap_move_detailed_balance():
    """Two temperatures, a 3-state space: the kernel's empirical swap frequencies match the
    rule min(1, exp((b1 - b2)(E_a - E_b))) within binomial error, and that rule satisfies
    detailed balance for pi(a, b) ∝ exp(-b1 E_a - b2 E_b) exactly."""
    energies = jnp.array([0.0, 1.5, 3.0])
    betas = jnp.array([1.0, 0.3])
    energy_fn = lambda x: energies[x.astype(jnp.int32)]
    stay = lambda key, state, energy_fn: (state, ())
    kernel = tempering.build_kernel(stay)
    init_pos = lambda x, e: langevin.LangevinState(x)
    n = 4000
    pi = np.exp(-np.asarray(betas)[0] * np.asarray(energies)[:, None] - np.asarray(betas)[1] * np.asarray(energies)[None, :])
    pi /= pi.sum()
    swap_prob = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            state = tempering.init(jnp.array([a, b], jnp.float32), energy_fn, betas, init_pos)
            keys = jax.random.split(jax.random.key(10 * a + b), n)
            new, info = jax.vmap(lambda k: kernel(k, state, energy_fn, betas))(keys)
            rule = float(np.exp(min(0.0, float(tempering.swap_log_acceptance(betas, energies[jnp.array([a, b])])[0]))))
            swapped = np.asarray(info.swap_accepted[:, 0]).mean() if a != b else rule
            assert abs(swapped - rule) <= 4.5 * np.sqrt(rule * (1 - rule) / n) + 1e-9
            if a != b:
                moved = np.asarray(new.replicas.position)
                assert np.all((moved == [b, a]) == np.asarray(info.swap_accepted[:, :1]))
            swap_prob[a, b] = rule
    for a in range(3):
        for b in range(3):
            assert np.isclose(pi[a, b] * swap_prob[a, b], pi[b, a] * swap_prob[b, a], rtol=1e-6)


def test_annealed_langevin_final_level_variance():
    """Data N(0, 1) smoothed by sigma: E(x, sigma) = x^2 / (2 (1 + sigma^2)). After the last
    level (sigma_L, step alpha_L / 2) the chains follow the discretised chain's exact stationary
    variance s^2 / (1 - h / (2 s^2)), s^2 = 1 + sigma_L^2, h = alpha_L / 2. Levels and eps keep
    every level stable (h_i / s_i^2 < 2) and make the final bias visible (about 14 standard errors)."""
    sigmas = jnp.geomspace(1.0, 0.3, 4)
    eps = 0.4
    energy_fn = lambda x, sigma: 0.5 * x**2 / (1 + sigma**2)
    n = 50_000
    alphas = annealed.step_sizes(sigmas, eps)
    np.testing.assert_allclose(alphas, eps * (np.asarray(sigmas) / 0.3) ** 2, rtol=1e-5)
    assert np.all(alphas / 2 / (1 + sigmas**2) < 2)
    final, per_level = jax.jit(lambda k, x: annealed.annealed_langevin(k, energy_fn, x, sigmas, 100, eps))(
        jax.random.key(0), jnp.zeros(n))
    s2, h = 1 + 0.3**2, eps / 2
    exact = s2 / (1 - h / (2 * s2))
    se = exact * np.sqrt(2 / (n - 1))
    assert per_level.shape == (4, n)
    x = np.asarray(final, np.float64)
    assert abs(x.var(ddof=1) - exact) < 5 * se
    assert abs(s2 - exact) > 10 * se


def test_hmc_diagonal_mass_matrix():
    """Variances 0.01 and 100: with the inverse mass set to the variances the target looks
    isotropic to HMC, so one step size serves both scales; moments by ESS z-tests."""
    variances = np.array([0.01, 100.0])
    energy_fn = gaussian(np.diag(variances))
    starts = jnp.asarray(np.random.default_rng(2).normal(size=(64, 2)) * np.sqrt(variances), jnp.float32)
    draws, infos, step_size = _sample(hmc.build_kernel(), hmc.init, energy_fn, starts, 300, 500, 0.8, 0.5,
                                      num_integration_steps=5, inverse_mass_matrix=jnp.asarray(variances, jnp.float32))
    _check_moments(draws, np.diag(variances), num_tests=2 * 2)
    assert step_size > 0.3  # an identity mass matrix would need step < 2 * 0.1 for the narrow axis
