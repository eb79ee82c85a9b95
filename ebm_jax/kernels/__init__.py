"""Kernels written for speed on XLA:CPU, with the same function and gradients as the plain ops.

    conv_nhwc(x, kernel, strides, padding)     a 2-D NHWC convolution; on CPU its input gradient
                                               and one-channel layers are reformulated (`conv`),
                                               elsewhere it is `lax.conv_general_dilated`
    conv_bias_act(x, kernel, bias, ...)        activation(conv + bias), fused on CPU for one channel
    loop_friendly_conv                         drop-in for `lax.conv_general_dilated` (Flax's
                                               `nn.Conv(conv_general_dilated=...)`); its fused form
                                               is `loop_friendly_conv.bias_act`
    reformulated_conv                          the CPU branch on any platform (for benchmarks)
    swish                                      x * sigmoid(x) via tanh (`activations`)

The energies (`ebm_jax.energies`) take these as options; the reasons and measurements are in
`experiments/benchmarks/README.md`.
"""

from ebm_jax.kernels.activations import swish
from ebm_jax.kernels.conv import NHWC, conv_bias_act, conv_nhwc, loop_friendly_conv, reformulated_conv

__all__ = ["NHWC", "conv_bias_act", "conv_nhwc", "loop_friendly_conv", "reformulated_conv", "swish"]
