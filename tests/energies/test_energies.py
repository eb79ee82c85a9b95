import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.energies import CourseCNN, TutorialCNN, per_example


@pytest.mark.parametrize("model", [TutorialCNN(), TutorialCNN(features=8), CourseCNN()])
def test_energy_shape(model):
    x = jax.random.uniform(jax.random.key(0), (5, 28, 28, 1), minval=-1, maxval=1)
    params = model.init(jax.random.key(1), x)
    energy = model.apply(params, x)
    assert energy.shape == (5,)
    assert energy.dtype == jnp.float32
    assert np.all(np.isfinite(energy))


def test_tutorial_cnn_layer_shapes():
    params = TutorialCNN().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    kernels = [params[f"Conv_{i}"]["kernel"].shape for i in range(4)]
    assert kernels == [(5, 5, 1, 16), (3, 3, 16, 32), (3, 3, 32, 64), (3, 3, 64, 64)]
    # 2x2 spatial positions x 64 channels after four stride-2 convolutions.
    assert params["Dense_0"]["kernel"].shape == (256, 64)
    assert params["Dense_1"]["kernel"].shape == (64, 1)


def test_tutorial_cnn_returns_minus_network_output():
    """The tutorial's network outputs -E: with the last layer fixed to output +3, E = -3."""
    model = TutorialCNN()
    x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1, maxval=1)
    params = model.init(jax.random.key(1), x)
    last = params["params"]["Dense_1"]
    last["kernel"] = jnp.zeros_like(last["kernel"])
    last["bias"] = jnp.full_like(last["bias"], 3.0)
    np.testing.assert_allclose(model.apply(params, x), -3.0)


def test_course_cnn_returns_head_output():
    model = CourseCNN()
    x = jnp.zeros((2, 28, 28, 1))
    params = model.init(jax.random.key(1), x)
    last = params["params"]["Dense_1"]
    last["kernel"] = jnp.zeros_like(last["kernel"])
    last["bias"] = jnp.full_like(last["bias"], 2.5)
    np.testing.assert_allclose(model.apply(params, x), 2.5)


def test_per_example_matches_batched():
    model = TutorialCNN(features=8)
    x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1), minval=-1, maxval=1)
    params = model.init(jax.random.key(1), x)
    energy_fn = per_example(model.apply, params)
    np.testing.assert_allclose(jax.vmap(energy_fn)(x), model.apply(params, x), rtol=1e-5, atol=1e-6)


def test_bad_input_shape_and_dtype():
    model = TutorialCNN(features=8)
    params = model.init(jax.random.key(1), jnp.zeros((1, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"\[B, 28, 28, 1\]"):
        model.apply(params, jnp.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="28, 28, 1"):
        model.apply(params, jnp.zeros((2, 1, 28, 28)))
    with pytest.raises(TypeError, match="floating"):
        model.apply(params, jnp.zeros((2, 28, 28, 1), jnp.uint8))
