"""Convolutional energies for 28x28 greyscale images.

`TutorialCNN` is the network of the UvA "Deep Energy-Based Generative Models" tutorial
(Lippe, UvA DL course, tutorial 8), returning E(x) rather than the tutorial's -E(x).
`CourseCNN` is the LeakyReLU(0.2) energy of the EBM course text.
"""

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_jax.kernels import NHWC, loop_friendly_conv, swish


class TutorialCNN(nn.Module):
    """The tutorial's CNN energy, `[B, 28, 28, 1]` in [-1, 1] -> energy `[B]`.

    Layers (c = `features`, 32 by default), Swish after every layer but the last:
      Conv 5x5 stride 2 pad 4 -> c/2   [B, 16, 16, c/2]
      Conv 3x3 stride 2 pad 1 -> c     [B,  8,  8, c]
      Conv 3x3 stride 2 pad 1 -> 2c    [B,  4,  4, 2c]
      Conv 3x3 stride 2 pad 1 -> 2c    [B,  2,  2, 2c]
      flatten -> Dense 2c -> Dense 1
    The tutorial outputs -E; this module outputs E = -(that output). Swish is
    `ebm_jax.kernels.swish`, the same function as `flax.linen.swish`, faster on CPU.
    Each conv layer and its Swish is one `ConvAct` named `Conv_i`, whose parameters are those of
    `nn.Conv` (same names, shapes and initialisers).

    `outputs` > 1: the last layer is Dense(outputs) and the module returns those K logits
    `[B, K]` (the tutorial's score, one per class) for `ClassifierEnergy` (JEM) to read as
    energies; the layers and parameter names are otherwise the same.

    `conv`: the convolution primitive of the `ConvAct` layers; `loop_friendly_conv` (the default)
    and `lax.conv_general_dilated` compute the same function, the first with faster input
    gradients inside sampler loops on CPU; on other platforms (GPU) the first lowers to the
    second (see `ebm_jax.kernels`).
    """

    features: int = 32
    conv: Callable = loop_friendly_conv
    outputs: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_images(x)
        _check_outputs(self.outputs)
        c = self.features
        for i, (features, size, padding) in enumerate(((c // 2, 5, 4), (c, 3, 1), (2 * c, 3, 1), (2 * c, 3, 1))):
            x = ConvAct(features, size, 2, padding, swish, self.conv, name=f"Conv_{i}")(x)
        x = x.reshape(x.shape[0], -1)
        x = swish(nn.Dense(2 * c)(x))
        if self.outputs > 1:
            return nn.Dense(self.outputs)(x)
        score = nn.Dense(1)(x)[:, 0]
        return -score


class CourseCNN(nn.Module):
    """The EBM course text's LeakyReLU(0.2) energy, `[B, 28, 28, 1]` -> energy `[B]`.

      Conv 4x4 stride 2 pad 1 -> 64    [B, 14, 14, 64]
      Conv 4x4 stride 2 pad 1 -> 128   [B,  7,  7, 128]
      flatten -> Dense 256 -> Dense 1
    """

    features: int = 64
    negative_slope: float = 0.2
    conv: Callable = loop_friendly_conv

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_images(x)
        act = lambda h: nn.leaky_relu(h, self.negative_slope)
        x = act(_conv(self.features, 4, 1, self.conv)(x))
        x = act(_conv(2 * self.features, 4, 1, self.conv)(x))
        x = x.reshape(x.shape[0], -1)
        x = act(nn.Dense(256)(x))
        return nn.Dense(1)(x)[:, 0]


class ConvAct(nn.Module):
    """`activation(conv(x, kernel) + bias)`: a square `nn.Conv` and an elementwise activation in
    one layer, NHWC `[B, H, W, C]` -> `[B, H', W', features]`.

    Its parameters are `nn.Conv`'s: `kernel [size, size, C, features]` (LeCun normal) and `bias
    [features]` (zeros). One layer rather than two, so that a `conv` with a fused form
    (`conv.bias_act`, as `ebm_jax.kernels.loop_friendly_conv` has) can fold the bias and the
    activation into its computation; any other `conv` (a `lax.conv_general_dilated` drop-in) is
    called as `nn.Conv` would call it, then the bias and activation are applied.
    """

    features: int
    size: int
    strides: int = 1
    padding: int = 0
    activation: Callable[[jax.Array], jax.Array] = swish
    conv: Callable = loop_friendly_conv

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (self.size, self.size, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
        strides, padding = (self.strides,) * 2, ((self.padding,) * 2,) * 2
        fused = getattr(self.conv, "bias_act", None)
        if fused is not None:
            return fused(x, kernel, bias, strides, padding, self.activation)
        return self.activation(self.conv(x, kernel, strides, padding, dimension_numbers=NHWC) + bias)


def _conv(features: int, size: int, padding: int, conv: Callable) -> nn.Conv:
    """A stride-2 square convolution, as every conv layer of both networks."""
    return nn.Conv(features, (size, size), strides=2, padding=padding, conv_general_dilated=conv)


def _check_outputs(outputs: int) -> None:
    if outputs < 1:
        raise ValueError(f"outputs must be >= 1 (1: an energy [B]; K > 1: K logits [B, K]), got {outputs}")


def _check_images(x) -> None:
    if x.ndim != 4 or x.shape[1:] != (28, 28, 1):
        raise ValueError(
            f"expected images of shape [B, 28, 28, 1] (NHWC, values in [-1, 1]), got {x.shape}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"expected floating-point images, got dtype {x.dtype}")
