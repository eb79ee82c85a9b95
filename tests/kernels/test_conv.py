import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ebm_jax.energies import ConvAct, TutorialCNN
from ebm_jax.kernels import conv_bias_act, conv_nhwc, loop_friendly_conv, reformulated_conv

NHWC = ("NHWC", "HWIO", "NHWC")


def _reference_float64(x, k, stride, pad):
    """sum(sin(conv(x, k))) and its gradients in float64 numpy, tap by tap."""
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    kh, kw = k.shape[:2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    mh, mw = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
    window = lambda u, v: (slice(None), slice(u, u + stride * (mh - 1) + 1, stride), slice(v, v + stride * (mw - 1) + 1, stride))
    y = sum(np.einsum("bijc,cf->bijf", xp[window(u, v)], k[u, v]) for u in range(kh) for v in range(kw))
    g = np.cos(y)
    dk, dxp = np.zeros_like(k), np.zeros_like(xp)
    for u in range(kh):
        for v in range(kw):
            dk[u, v] = np.einsum("bijc,bijf->cf", xp[window(u, v)], g)
            dxp[window(u, v)] += np.einsum("bijf,cf->bijc", g, k[u, v])
    return y, dxp[:, pad: pad + x.shape[1], pad: pad + x.shape[2]], dk


# One input channel takes the banded-matrix path; 2 channels the input gradient with merged
# column phases (stride * channels <= 32), 17 channels the one with a convolution per phase.
@pytest.mark.parametrize("channels", [1, 2, 17])
@pytest.mark.parametrize("size,kernel,stride,pad", [
    (28, 5, 2, 4), (16, 3, 2, 1), (8, 3, 2, 1), (4, 3, 2, 1),  # the tutorial CNN's layers
    (28, 4, 2, 1), (14, 4, 2, 1),                                # the course CNN's layers
    (9, 3, 2, 0), (10, 3, 3, 2), (7, 2, 1, 0), (7, 3, 1, 1),     # odd remainders, strides 1 and 3
    (11, 2, 3, 0), (6, 1, 2, 0),                                 # kernels smaller than the stride
])
def test_output_and_gradients_as_accurate_as_lax(size, kernel, stride, pad, channels):
    """Against a float64 reference: output and both gradients (input, kernel) within float32
    rounding of sums (1e-6 of the largest entry, 1e-5 relative), and never more than 4x further
    from it than XLA's own convolution and autodiff are."""
    x = jax.random.normal(jax.random.key(0), (3, size, size, channels))
    # Kernel scaled so outputs are O(1) at any channel count (sin' of a large output would
    # amplify float32 rounding beyond the tolerance for XLA's own convolution too).
    k = jax.random.normal(jax.random.key(1), (kernel, kernel, channels, 5)) / np.sqrt(kernel * kernel * channels)
    strides, padding = (stride, stride), ((pad, pad), (pad, pad))
    lax_conv = lambda x, k: lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=NHWC)
    new_conv = lambda x, k: conv_nhwc(x, k, strides, padding)
    grads = lambda conv: jax.grad(lambda x, k: jnp.sum(jnp.sin(conv(x, k))), (0, 1))(x, k)
    truth = _reference_float64(x, k, stride, pad)
    for new, old, ref in zip((new_conv(x, k), *grads(new_conv)), (lax_conv(x, k), *grads(lax_conv)), truth):
        tolerance = 1e-6 * np.abs(ref).max() + 1e-5 * np.abs(ref)
        new_err, old_err = np.abs(np.asarray(new, np.float64) - ref), np.abs(np.asarray(old, np.float64) - ref)
        assert np.all(new_err <= tolerance), (new_err.max(), tolerance.min())
        assert new_err.max() <= 4 * old_err.max() + 1e-7 * np.abs(ref).max(), (new_err.max(), old_err.max())


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


@pytest.mark.parametrize("channels, cpu_convs", [(1, 0), (16, 2), (32, 4)])
def test_cpu_lowering_holds_the_reformulation_other_platforms_xla_conv(channels, cpu_convs):
    """`conv_nhwc` picks its branch per platform when lowered: exported for CPU, the input
    gradient of a stride-2 layer is the banded product (one channel, no convolution), one
    convolution per row phase (16 channels: the column phases merged) or one per output phase
    (32 channels: 4); exported for CUDA it is autodiff's single transposed
    convolution, as with `lax.conv_general_dilated` itself; `reformulated_conv` forces the CPU
    branch on any platform."""
    x, k = jnp.zeros((2, 16, 16, channels)), jnp.zeros((3, 3, channels, 8))
    padding = ((1, 1), (1, 1))
    input_grad = lambda conv: jax.jit(jax.grad(lambda x: jnp.sum(conv(x, k, (2, 2), padding))))
    lax_conv = lambda x, k, s, p: lax.conv_general_dilated(x, k, s, p, dimension_numbers=NHWC)
    count = lambda conv, platform: jax.export.export(input_grad(conv), platforms=(platform,))(x).mlir_module().count(
        "stablehlo.convolution")
    assert count(lax_conv, "cuda") == count(conv_nhwc, "cuda") == 1
    assert count(conv_nhwc, "cpu") == cpu_convs
    assert count(reformulated_conv, "cuda") == count(conv_nhwc, "cpu")  # forced on any platform


_SHARDED_GRADIENTS = """
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec as P
from ebm_jax import parallel
from ebm_jax.kernels import reformulated_conv
mesh = parallel.data_mesh()
x = jax.random.normal(jax.random.key(0), (8, 28, 28, 1))
k = jax.random.normal(jax.random.key(1), (5, 5, 1, 16))
loss = lambda k, x: jnp.sum(jnp.sin(reformulated_conv(x, k, (2, 2), ((4, 4), (4, 4)))))
ref = jax.grad(loss, argnums=(0, 1))(k, x)
per_device = lambda k, x: jax.grad(lambda k, x: jax.lax.psum(loss(k, x), "data"), argnums=(0, 1))(k, x)
out = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P(), P("data"))))(k, x)
print(json.dumps([float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(out, ref)]))
"""


def test_banded_kernel_gradient_under_shard_map_sums_over_devices():
    """The one-channel layer's product has its own VJP rule; under shard_map, with the kernel the
    same on every device and the images split, its kernel gradient must be the sum over devices
    (as autodiff's rules give): compare with the unsharded gradients, on 2 CPU devices."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run([sys.executable, "-c", _SHARDED_GRADIENTS], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    kernel_error, input_error = json.loads(out.stdout.strip().splitlines()[-1])
    assert kernel_error < 1e-5 and input_error < 1e-6


@pytest.mark.parametrize("channels, conv", [(1, loop_friendly_conv), (3, loop_friendly_conv), (1, lax.conv_general_dilated)])
def test_conv_act_is_nn_conv_then_activation(channels, conv):
    """`ConvAct` has nn.Conv's parameters (same initial values) and computes activation(conv + bias):
    output, input gradient and parameter gradients against `nn.Conv` followed by the activation,
    with a non-zero bias (on CPU a one-channel layer adds it inside its banded product)."""
    x = jax.random.normal(jax.random.key(0), (3, 13, 11, channels))
    layer = ConvAct(6, 5, strides=2, padding=3, activation=jnp.tanh, conv=conv)
    reference = nn.Conv(6, (5, 5), strides=2, padding=3)
    params = layer.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, reference.init(jax.random.key(1), x))
    same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), params, reference.init(jax.random.key(1), x))
    assert all(jax.tree.leaves(same))
    params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(2), p.shape), params)
    ours = lambda p, x: layer.apply(p, x)
    theirs = lambda p, x: jnp.tanh(reference.apply(p, x))
    np.testing.assert_allclose(ours(params, x), theirs(params, x), rtol=1e-5, atol=1e-6)
    loss = lambda f: lambda p, x: jnp.sum(jnp.sin(3.0 * f(p, x)))
    g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    g_theirs = jax.grad(loss(theirs), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_conv_bias_act_lowers_to_the_banded_product_on_cpu_only():
    """One channel: exported for CPU, `conv_bias_act` and its input gradient hold no convolution
    (the banded product); exported for CUDA, XLA's convolution, forward and input gradient."""
    x, k, b = jnp.zeros((2, 28, 28, 1)), jnp.zeros((5, 5, 1, 16)), jnp.zeros((16,))
    fn = jax.jit(jax.grad(lambda x: jnp.sum(conv_bias_act(x, k, b, (2, 2), ((4, 4), (4, 4)), jnp.tanh))))
    count = lambda platform: jax.export.export(fn, platforms=(platform,))(x).mlir_module().count("stablehlo.convolution")
    assert count("cpu") == 0 and count("cuda") == 2
