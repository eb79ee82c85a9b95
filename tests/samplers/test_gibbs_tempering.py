"""Block Gibbs and replica exchange on small RBMs against exact enumeration of p(v).

Each check uses the final states of many independent chains, so the draws are independent and a
frequency's standard error is binomial; tolerances are Bonferroni-corrected z-values
(`z_critical`) times that error.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.energies import rbm
from ebm_jax.samplers import gibbs, sample, tempering

from samplers_targets import z_critical

NUM_CHAINS = 4000


def states(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), np.float32)


def exact_p_v(params):
    vs = states(params["W"].shape[0])
    f = np.asarray(rbm.free_energy(params, jnp.asarray(vs)), np.float64)
    p = np.exp(-(f - f.min()))
    return vs, p / p.sum()


def two_mode_rbm():
    """12 visible, 4 hidden: units 0-5 on (mode A, mass 0.88) or units 6-11 on (mode B, 0.12)."""
    pattern = np.r_[np.ones(6), -np.ones(6)]
    W = 3.0 * np.stack([pattern, pattern, -pattern, -pattern], 1)
    c = np.array([-8.0, -8.0, -9.0, -9.0]) + 0.0
    return rbm.as_params({"W": W, "b": np.zeros(12), "c": c + 0.0})


def in_mode_a(v):
    return np.asarray(v[:, :6].sum(1) > v[:, 6:].sum(1))


def test_two_mode_rbm_is_what_the_tests_assume():
    params = two_mode_rbm()
    vs, p = exact_p_v(params)
    mass_a = p[in_mode_a(vs)].sum()
    mass_b = p[in_mode_a(vs[:, ::-1])].sum()
    assert 0.8 < mass_a < 0.95 and mass_a + mass_b > 0.999


def test_gibbs_matches_the_exact_marginals():
    """A weakly coupled RBM (Gibbs mixes): visible marginals and the probability of the five
    likeliest states, from 4,000 independent chains of 50 sweeps."""
    rng = np.random.default_rng(3)
    params = rbm.as_params({"W": rng.normal(0, 0.6, (10, 4)), "b": rng.normal(0, 1, 10), "c": rng.normal(0, 1, 4)})
    vs, p = exact_p_v(params)
    energy_fn = lambda v, h: rbm.joint_energy(params, v, h)
    starts = jax.random.bernoulli(jax.random.key(1), 0.5, (NUM_CHAINS, 10)).astype(jnp.float32)
    final, _, infos = sample(jax.random.key(2), gibbs.spec(50, 4), energy_fn, starts)
    x = np.asarray(final.position)
    assert set(np.unique(x)) <= {0.0, 1.0}
    top = np.argsort(p)[-5:]
    freq = np.array([np.all(x == vs[i], axis=1).mean() for i in top])
    exact = np.concatenate([(p[:, None] * vs).sum(0), p[top]])
    observed = np.concatenate([x.mean(0), freq])
    se = np.sqrt(exact * (1 - exact) / NUM_CHAINS)
    np.testing.assert_array_less(np.abs(observed - exact), z_critical(len(exact)) * se)
    assert infos.change_rate.shape == (50, NUM_CHAINS)


def test_the_state_keeps_the_joint_energy():
    params = two_mode_rbm()
    energy_fn = lambda v, h: rbm.joint_energy(params, v, h, 0.4)
    kernel = gibbs.build_kernel()
    state = gibbs.init(jnp.ones(12), energy_fn, 4)
    for key in jax.random.split(jax.random.key(0), 5):
        state, _ = kernel(key, state, energy_fn)
        np.testing.assert_allclose(state.energy, energy_fn(state.position, state.hidden), rtol=1e-6)


def test_tempering_recovers_the_mode_masses_gibbs_does_not():
    """From mode A only: plain Gibbs stays there (its mode-A share is far above the exact 0.88),
    replica exchange over 8 temperatures down to beta = 0.05 finds mode B in the exact proportion,
    and its visible marginals match."""
    params = two_mode_rbm()
    vs, p = exact_p_v(params)
    mass_a = p[in_mode_a(vs)].sum()
    energy_fn = lambda v, h: rbm.joint_energy(params, v, h)
    starts = jnp.tile(jnp.r_[jnp.ones(6), jnp.zeros(6)], (NUM_CHAINS, 1))
    z = z_critical(14)
    se = np.sqrt(mass_a * (1 - mass_a) / NUM_CHAINS)

    final, _, _ = sample(jax.random.key(0), gibbs.spec(200, 4), energy_fn, starts)
    share_gibbs = in_mode_a(np.asarray(final.position)).mean()
    assert share_gibbs - mass_a > 10 * se

    betas = tempering.geometric_betas(8, 0.05)
    spec = tempering.spec(gibbs.spec(1, 4), betas, 200)
    final, _, infos = sample(jax.random.key(1), spec, energy_fn, jnp.repeat(starts[:, None], 8, 1))
    x = np.asarray(final.replicas.position[:, 0])
    assert abs(in_mode_a(x).mean() - mass_a) < z * se
    marginals = (p[:, None] * vs).sum(0)
    np.testing.assert_array_less(np.abs(x.mean(0) - marginals), z * np.sqrt(marginals * (1 - marginals) / NUM_CHAINS))
    # Every neighbour pair swaps at times, on alternating steps.
    assert bool(jnp.all(infos.swap_accepted.any((0, 1))))
    np.testing.assert_array_equal(infos.swap_proposed[0, 0], [True, False] * 3 + [True])
    np.testing.assert_array_equal(infos.swap_proposed[1, 0], [False, True] * 3 + [False])


def test_tempering_spec_starts_at_the_given_parity():
    params = two_mode_rbm()
    energy_fn = lambda v, h: rbm.joint_energy(params, v, h)
    spec = tempering.spec(gibbs.spec(1, 4), tempering.geometric_betas(4, 0.2), 1, step=5)
    _, _, infos = sample(jax.random.key(0), spec, energy_fn, jnp.zeros((2, 4, 12)))
    np.testing.assert_array_equal(infos.swap_proposed[0, 0], [False, True, False])
