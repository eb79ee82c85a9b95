import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ebm_jax.energies import TutorialCNN
from ebm_jax.energies.conv import conv_nhwc, loop_friendly_conv

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("channels", [1, 2])  # one input channel takes the patches path
@pytest.mark.parametrize("size,kernel,stride,pad", [
    (28, 5, 2, 4), (16, 3, 2, 1), (8, 3, 2, 1), (4, 3, 2, 1),  # the tutorial CNN's layers
    (28, 4, 2, 1), (14, 4, 2, 1),                                # the course CNN's layers
    (9, 3, 2, 0), (10, 3, 3, 2), (7, 2, 1, 0), (7, 3, 1, 1),     # odd remainders, strides 1 and 3
    (11, 2, 3, 0), (6, 1, 2, 0),                                 # kernels smaller than the stride
])
def test_gradients_match_autodiff(size, kernel, stride, pad, channels):
    x = jax.random.normal(jax.random.key(0), (3, size, size, channels))
    k = jax.random.normal(jax.random.key(1), (kernel, kernel, channels, 5))
    padding = ((pad, pad), (pad, pad))
    ref = lambda x, k: jnp.sum(jnp.sin(lax.conv_general_dilated(x, k, (stride, stride), padding, dimension_numbers=NHWC)))
    new = lambda x, k: jnp.sum(jnp.sin(conv_nhwc(x, k, (stride, stride), padding)))
    out = conv_nhwc(x, k, (stride, stride), padding)
    np.testing.assert_allclose(out, lax.conv_general_dilated(x, k, (stride, stride), padding, dimension_numbers=NHWC),
                               rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.grad(new, (0, 1))(x, k), jax.grad(ref, (0, 1))(x, k)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_unusual_arguments_fall_back_to_lax():
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 4))
    k = jax.random.normal(jax.random.key(1), (3, 3, 2, 6))
    out = loop_friendly_conv(x, k, (1, 1), "SAME", feature_group_count=2, dimension_numbers=NHWC)
    ref = lax.conv_general_dilated(x, k, (1, 1), "SAME", feature_group_count=2, dimension_numbers=NHWC)
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_model_input_gradient_matches_plain_lax_model():
    """The tutorial CNN's input gradient equals that of the same network written with lax convs."""
    model = TutorialCNN()
    x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1), minval=-1, maxval=1)
    params = model.init(jax.random.key(1), x)
    p = params["params"]

    def plain(x):
        h = x
        for i, pad in enumerate((4, 1, 1, 1)):
            conv = p[f"Conv_{i}"]
            h = jax.nn.swish(lax.conv_general_dilated(h, conv["kernel"], (2, 2), [(pad, pad)] * 2, dimension_numbers=NHWC) + conv["bias"])
        h = jax.nn.swish(h.reshape(h.shape[0], -1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        return -(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])[:, 0]

    np.testing.assert_allclose(model.apply(params, x), plain(x), rtol=1e-5, atol=1e-6)
    g_model = jax.grad(lambda x: model.apply(params, x).sum())(x)
    g_plain = jax.grad(lambda x: plain(x).sum())(x)
    np.testing.assert_allclose(g_model, g_plain, rtol=1e-4, atol=1e-6)
