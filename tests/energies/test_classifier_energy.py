"""The classifier energy (JEM's reading of logits) and the networks' logits outputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import compose, per_example
from ebm_jax.energies import ClassifierEnergy, MLPEnergy, ResNetEnergy, TutorialCNN, spectral_update


def test_marginal_is_logsumexp_of_the_joint_and_probs_are_the_softmax():
    model = ClassifierEnergy(MLPEnergy(features=(16,), outputs=5))
    x = jax.random.normal(jax.random.key(0), (7, 3))
    v = model.init(jax.random.key(1), x)
    joint = jnp.stack([model.apply(v, x, jnp.full((7,), k, jnp.int32)) for k in range(5)], -1)  # E(x, y) [7, 5]
    logits = model.apply(v, x, method="logits")
    np.testing.assert_array_equal(joint, -logits)
    # E(x) = -logsumexp_y f(x)[y] = -logsumexp_y(-E(x, y)): the same numbers, so bit-equal on CPU.
    np.testing.assert_array_equal(model.apply(v, x), -jax.nn.logsumexp(-joint, axis=-1))
    probs = model.apply(v, x, method="probs")
    np.testing.assert_allclose(probs, jax.nn.softmax(logits, -1), rtol=1e-6)
    np.testing.assert_allclose(probs, jnp.exp(model.apply(v, x)[:, None] - joint), rtol=1e-5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)


def test_class_conditional_energy_of_one_example_for_samplers():
    model = ClassifierEnergy(MLPEnergy(features=(16,), outputs=3))
    x = jax.random.normal(jax.random.key(0), (4, 2))
    v = model.init(jax.random.key(1), x)
    energy_fn = per_example(model.apply, v)              # (x [2], y []) -> []
    conditioned = compose.condition(energy_fn, 2)        # x -> E(x, 2)
    expected = model.apply(v, x, jnp.full((4,), 2, jnp.int32))
    np.testing.assert_allclose(jax.vmap(conditioned)(x), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(energy_fn)(x), model.apply(v, x), rtol=1e-6)


def test_networks_give_k_logits_with_the_energy_layers_otherwise_unchanged():
    x = jnp.zeros((2, 28, 28, 1))
    cnn, cnn10 = TutorialCNN(features=8), TutorialCNN(features=8, outputs=10)
    v1, v10 = cnn.init(jax.random.key(0), x), cnn10.init(jax.random.key(0), x)
    assert cnn10.apply(v10, x).shape == (2, 10) and cnn.apply(v1, x).shape == (2,)
    shapes = lambda v: jax.tree.map(jnp.shape, v)
    assert shapes(v10)["params"]["Dense_1"]["kernel"] == (16, 10)
    v10["params"]["Dense_1"] = v1["params"]["Dense_1"]
    assert shapes(v10) == shapes(v1)
    resnet = ClassifierEnergy(ResNetEnergy(widths=(8, 16), groups=4, outputs=10))
    v = resnet.init(jax.random.key(0), x)
    assert resnet.apply(v, x).shape == (2,) and resnet.apply(v, x, method="probs").shape == (2, 10)
    stats = spectral_update(resnet)(v, x)        # keyword arguments reach the backbone
    assert jax.tree.structure(stats) == jax.tree.structure({"batch_stats": v["batch_stats"]})


def test_bad_inputs_are_clear_errors():
    model = ClassifierEnergy(MLPEnergy(features=(8,)))   # one output: not a classifier
    x = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="outputs=K"):
        model.init(jax.random.key(0), x)
    model = ClassifierEnergy(MLPEnergy(features=(8,), outputs=4))
    v = model.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="integer labels"):
        model.apply(v, x, jnp.zeros((3,)))
    with pytest.raises(ValueError, match="outputs must be >= 1"):
        TutorialCNN(outputs=0).init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
