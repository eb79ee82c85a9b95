"""Every sampler honours the one contract: init(position, energy_fn); kernel(rng_key, state,
energy_fn, **params) -> (state, info); NamedTuples; PyTree positions; jit/vmap equivalence;
identical bits for identical keys; one compilation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import presets
from ebm_jax.energies import TutorialCNN, per_example
from ebm_jax.samplers import hmc, langevin, mala, tempering

SAMPLERS = {
    "langevin_textbook": (langevin.init, langevin.build_kernel("grad_first"), dict(step_size=0.01)),
    "langevin_tutorial": (langevin.init, langevin.build_kernel("noise_first"), presets.tutorial_sampler().params),
    "mala": (mala.init, mala.build_kernel(), dict(step_size=0.01)),
    "hmc": (hmc.init, hmc.build_kernel(), dict(step_size=0.05, num_integration_steps=3)),
}


def tree_energy(p):
    return 0.5 * jnp.sum(p["a"] ** 2) + 2.0 * p["b"] ** 2


def assert_same(a, b, exact=False):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if exact:
            assert np.array_equal(np.asarray(x), np.asarray(y))
        else:
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_contract_on_pytree_positions(name):
    init, kernel, params = SAMPLERS[name]
    position = {"a": jnp.array([0.5, -0.2, 0.1]), "b": jnp.array(0.3, jnp.float32)}  # strong dtypes: no weak-type retrace
    state = init(position, tree_energy)
    assert hasattr(state, "_fields") and "position" in state._fields
    step = lambda key, s: kernel(key, s, tree_energy, **params)
    new, info = step(jax.random.key(0), state)
    assert type(new) is type(state) and hasattr(info, "_fields")
    assert jax.tree.structure(new.position) == jax.tree.structure(position)
    jitted = jax.jit(step)
    out1, _ = jitted(jax.random.key(0), state)
    out2, _ = jitted(jax.random.key(1), out1)
    assert jitted._cache_size() == 1
    assert_same(out1, new)
    again, _ = jitted(jax.random.key(0), state)
    assert_same(again, out1, exact=True)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_vmap_over_image_chains_with_cnn_energy(name):
    init, kernel, params = SAMPLERS[name]
    model = TutorialCNN(features=8)
    images = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1), minval=-1, maxval=1)
    energy_fn = per_example(model.apply, model.init(jax.random.key(1), images))
    states = jax.vmap(lambda x: init(x, energy_fn))(images)
    keys = jax.random.split(jax.random.key(2), 3)
    step = lambda k, s: kernel(k, s, energy_fn, **params)
    batched, _ = jax.jit(jax.vmap(step))(keys, states)
    assert batched.position.shape == images.shape
    for i in range(3):
        single, _ = step(keys[i], jax.tree.map(lambda a: a[i], states))
        assert_same(jax.tree.map(lambda a: a[i], batched), single)


@pytest.mark.parametrize("inner", ["mala", "hmc", "langevin_textbook"])
def test_tempering_wraps_every_kernel(inner):
    init, kernel, params = SAMPLERS[inner]
    betas = tempering.geometric_betas(4, 0.1)
    energy_fn = lambda x: 0.5 * jnp.sum(x**2)
    state = tempering.init(jnp.zeros((4, 2)), energy_fn, betas, init)
    step = jax.jit(lambda k, s: tempering.build_kernel(kernel)(k, s, energy_fn, betas, **params))
    s1, info = step(jax.random.key(0), state)
    s2, info2 = step(jax.random.key(1), s1)
    assert step._cache_size() == 1
    assert s1.replicas.position.shape == (4, 2) and int(s2.step) == 2
    # Even pairs on even steps, odd pairs on odd steps.
    np.testing.assert_array_equal(info.swap_proposed, [True, False, True])
    np.testing.assert_array_equal(info2.swap_proposed, [False, True, False])
    if "energy" in s2.replicas._fields:  # cached tempered energies stay consistent after swaps
        np.testing.assert_allclose(s2.replicas.energy, betas * jax.vmap(energy_fn)(s2.replicas.position), rtol=1e-5, atol=1e-6)


def test_convenience_constructors_check_parameters():
    with pytest.raises(ValueError, match="step_size"):
        mala.mala(tree_energy, 0.0)
    with pytest.raises(ValueError, match="num_integration_steps"):
        hmc.hmc(tree_energy, 0.1, 0)
    with pytest.raises(ValueError, match="min_beta"):
        tempering.geometric_betas(4, 1.5)
