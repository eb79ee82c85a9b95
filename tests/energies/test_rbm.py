"""RBM energies against enumeration: free energies, conditionals, the modules, DBN shapes."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from ebm_jax.energies import BernoulliRBM, GaussianBernoulliRBM, dbn, rbm
from ebm_jax.samplers import gibbs


def small_rbm(seed=0, num_visible=5, num_hidden=3, scale=1.0):
    rng = np.random.default_rng(seed)
    return {"W": rng.normal(0, scale, (num_visible, num_hidden)).astype(np.float32),
            "b": rng.normal(0, 1, num_visible).astype(np.float32),
            "c": rng.normal(0, 1, num_hidden).astype(np.float32)}


def states(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), np.float32)


@pytest.mark.parametrize("beta", [1.0, 0.3])
@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_sums_the_hidden_units_out(beta, visible):
    params = rbm.as_params(small_rbm())
    hs = states(3)
    v = jnp.asarray(np.random.default_rng(1).normal(size=(4, 5)) if visible == "gaussian" else states(5)[[0, 7, 19, 31]])
    joint = rbm.joint_energy(params, v[:, None, :], jnp.asarray(hs)[None], beta, visible)  # [4, 8]
    expected = -logsumexp(-np.asarray(joint, np.float64), axis=1)
    np.testing.assert_allclose(rbm.free_energy(params, v, beta, visible), expected, rtol=1e-5, atol=1e-5)
    # The same marginal, read off the joint energy by `gibbs.free_energy` (autodiff in h).
    generic = gibbs.free_energy(lambda x, h: rbm.joint_energy(params, x, h, beta, visible), 3)
    np.testing.assert_allclose(jax.vmap(generic)(v), expected, rtol=1e-5, atol=1e-5)


def test_conditionals_are_ratios_of_the_joint():
    params = rbm.as_params(small_rbm(scale=0.7))
    vs, hs = states(5), states(3)
    p = np.exp(-np.asarray(rbm.joint_energy(params, vs[:, None], hs[None], 0.5), np.float64))
    p /= p.sum()  # p(v, h) at beta = 0.5, [32, 8]
    p_h_given_v = (p @ hs) / p.sum(1, keepdims=True)  # E[h | v], [32, 3]
    p_v_given_h = (p.T @ vs) / p.sum(0)[:, None]  # E[v | h], [8, 5]
    np.testing.assert_allclose(rbm.hidden_probs(params, vs, 0.5), p_h_given_v, atol=1e-6)
    np.testing.assert_allclose(rbm.visible_probs(params, hs, 0.5), p_v_given_h, atol=1e-6)


def test_modules_are_the_free_and_the_joint_energy():
    v = jnp.asarray(states(5)[3:7])
    h = jnp.asarray(states(3)[1:5])
    for module, visible in ((BernoulliRBM(3, init_scale=0.5), "bernoulli"), (GaussianBernoulliRBM(3, init_scale=0.5), "gaussian")):
        variables = module.init(jax.random.key(0), v)
        assert set(variables["params"]) == {"W", "b", "c"}
        assert variables["params"]["W"].shape == (5, 3)
        params = rbm.as_params(variables)
        np.testing.assert_allclose(module.apply(variables, v), rbm.free_energy(params, v, visible=visible), rtol=1e-6)
        np.testing.assert_allclose(module.apply(variables, v, h), rbm.joint_energy(params, v, h, visible=visible),
                                   rtol=1e-6)


def test_gaussian_visible_conditional():
    """One Gibbs step of a Gaussian-Bernoulli RBM from a fixed h: v ~ N(b + W h, I). The mean of
    n draws is within 5 standard errors (1 / sqrt(n)) per unit, the variance within 5 of its
    standard error sqrt(2 / n)."""
    params = rbm.as_params(small_rbm(scale=0.5))
    energy_fn = lambda v, h: rbm.joint_energy(params, v, h, visible="gaussian")
    h = jnp.array([1.0, 0.0, 1.0])
    kernel = gibbs.build_kernel("gaussian")
    # Pin h: a step draws h from v first, so give v whose hidden logits are huge for that h.
    n = 20000
    state = gibbs.GibbsState(jnp.zeros(5), h, jnp.zeros(()))

    def draw(key):
        # The visible half-step alone: the kernel with h forced by a clamped energy in h.
        pinned = lambda v, hh: energy_fn(v, hh) - 1e4 * jnp.vdot(2 * h - 1, hh)
        new, _ = kernel(key, state, pinned)
        return new.position, new.hidden

    v, hs = jax.vmap(draw)(jax.random.split(jax.random.key(0), n))
    assert bool(jnp.all(hs == h))
    mean = params["b"] + params["W"] @ h
    np.testing.assert_array_less(np.abs(np.asarray(v.mean(0) - mean)), 5 / np.sqrt(n))
    np.testing.assert_array_less(np.abs(np.asarray(v.var(0)) - 1.0), 5 * np.sqrt(2 / n))


def test_metrics_and_base_rate():
    params = rbm.as_params(small_rbm())
    v = jnp.asarray(states(5))
    # Exact pseudo-log-likelihood sum_i log p(v_i | v_-i) against the mean of many one-flip draws.
    flips = jnp.abs(v[:, None, :] - jnp.eye(5)[None])  # [32, 5, 5]
    exact = jnp.sum(jax.nn.log_sigmoid(rbm.free_energy(params, flips) - rbm.free_energy(params, v)[:, None]), 1)
    draws = jax.vmap(lambda k: rbm.pseudo_log_likelihood(k, params, v))(jax.random.split(jax.random.key(0), 4000))
    se = draws.std(0) / np.sqrt(4000)
    np.testing.assert_array_less(np.abs(np.asarray(draws.mean(0) - exact)), 5 * np.asarray(se) + 1e-6)
    assert float(rbm.reconstruction_error(params, v)) > 0
    logits = rbm.base_rate_logits(np.array([[1, 0], [1, 1], [0, 0], [1, 0]], np.float32))
    np.testing.assert_allclose(jax.nn.sigmoid(logits), [0.75, 0.25], rtol=1e-5)


def test_bad_params_are_rejected():
    with pytest.raises(ValueError, match="missing"):
        rbm.as_params({"W": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="b \\[V\\]"):
        rbm.as_params({"W": np.zeros((3, 2)), "b": np.zeros(2), "c": np.zeros(2)})
    with pytest.raises(ValueError, match="do not chain"):
        dbn.check_layers([small_rbm(num_visible=5, num_hidden=3), small_rbm(num_visible=4, num_hidden=2)])


def test_dbn_up_and_sample_shapes():
    layers = [small_rbm(0, 6, 4), small_rbm(1, 4, 3)]
    v = jnp.asarray(states(6)[:10])
    top = dbn.up(layers, v)
    assert top.shape == (10, 3) and bool(jnp.all((top > 0) & (top < 1)))
    np.testing.assert_allclose(top, rbm.hidden_probs(rbm.as_params(layers[1]), rbm.hidden_probs(rbm.as_params(layers[0]), v)))
    samples = dbn.sample(jax.random.key(0), layers, 7, 5)
    assert samples.shape == (7, 6) and bool(jnp.all((samples >= 0) & (samples <= 1)))
