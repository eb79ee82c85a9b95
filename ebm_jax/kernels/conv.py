"""A 2-D convolution with fast input gradients inside `lax.scan` on XLA:CPU.

Why: samplers differentiate the energy w.r.t. its input inside a `lax.scan` loop, and at small
shapes XLA:CPU's convolutions are slow there. Per layer, three things cost most: (1) autodiff's
input gradient reads the kernel with swapped feature axes (`01oi`), which XLA:CPU does not
pre-transpose inside loops; (2) for a stride-s layer that gradient is a convolution over the
output gradient dilated by s, so (s^2 - 1) / s^2 of its multiplies are by zeros; (3) with ONE
input channel (the first layer) a convolution makes poor use of the matrix units in both
directions.

What: the same function and the same gradients, computed as
  one input channel   ONE matrix product: KH strided row slices, cut into a few column
               windows, times a banded (Toeplitz) matrix built from the kernel (`_one_channel`);
               both gradients are autodiff's products, the input gradient's with its output
               width padded to a multiple of `_GRAD_WIDTH` (`_banded_product`).
  several channels     forward: lax convolution; input grad: stride s > 1: s^2 stride-1
               convolutions of the UNDILATED g, one per output phase (i mod s, j mod s), each
               with the sub-kernel of the taps that reach it, interleaved; when s * C <=
               `_MERGED_PHASE_CHANNELS` the column phases of a row phase are one convolution with
               s * C outputs, already column-interleaved; stride 1: one convolution with an
               explicitly transposed kernel; kernel grad: autodiff's own.
With the bias and an activation (`conv_bias_act`, `loop_friendly_conv.bias_act`), a one-channel
layer also folds the bias into its banded product and runs the activation on the product's rows,
whose minor dimension is jb * F rather than NHWC's F.
Where: on CPU only. On every other platform (GPU, TPU) `conv_nhwc` is XLA's own convolution and
autodiff. `lax.platform_dependent` picks the branch when the function is lowered, so a CPU
program holds no trace of the GPU branch and vice versa. The measurements behind each choice are
in `experiments/benchmarks/README.md`.

Tests compare output and both gradients with a float64 reference and with XLA's own
convolution on many shapes (odd sizes, strides 1-3, padding 0 or more, one or several
channels), and check which branch a CPU and a CUDA lowering hold; `experiments/benchmarks/`
measures the speed.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")  # `dimension_numbers` of every convolution here
_COLUMN_BLOCKS = 4  # one-channel layers: output-column blocks (see `_one_channel`)
_GRAD_WIDTH = 16  # the banded product's input gradient: output width padded to a multiple of this
_MERGED_PHASE_CHANNELS = 32  # strided input gradients: one conv per row phase when sw * C <= this


def conv_nhwc(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    """x `[B, H, W, C]`, kernel `[KH, KW, C, F]`, strides `(sh, sw)`, padding `((lo, hi), (lo, hi))`
    -> `[B, H', W', F]`; equal to `lax.conv_general_dilated` with NHWC / HWIO. On CPU computed
    as described in this module's docstring; elsewhere it is `lax.conv_general_dilated`."""
    return lax.platform_dependent(
        x, kernel,
        cpu=lambda x, k: reformulated_conv(x, k, strides, padding),
        default=lambda x, k: lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=NHWC),
    )


def reformulated_conv(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    """`conv_nhwc`'s CPU branch on any platform (for benchmarks that measure it elsewhere)."""
    strides, padding = tuple(strides), tuple(tuple(p) for p in padding)
    if kernel.shape[2] == 1:
        return _one_channel(x, kernel, strides, padding)
    return _conv_channels(x, kernel, strides, padding)


def conv_bias_act(x: jax.Array, kernel: jax.Array, bias: jax.Array, strides, padding,
                  activation: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """`activation(conv_nhwc(x, kernel, strides, padding) + bias)`, `activation` elementwise.

    On CPU, a one-channel layer adds its bias inside the banded product and applies the
    activation to the product's rows before they become NHWC (`_one_channel`): XLA:CPU's
    elementwise loops are 2-4x slower when the minor dimension is as short as 16 channels
    (`experiments/benchmarks/xla_cpu_shapes.py`). Elsewhere it is what it says.
    """
    plain = lambda x, k, b: activation(conv_nhwc(x, k, strides, padding) + b)
    if kernel.shape[2] != 1:
        return plain(x, kernel, bias)
    strides, padding = tuple(strides), tuple(tuple(p) for p in padding)
    return lax.platform_dependent(
        x, kernel, bias,
        cpu=lambda x, k, b: _one_channel(x, k, strides, padding, b, activation),
        default=plain,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_channels(x, kernel, strides, padding):
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=NHWC)


def _conv_fwd(x, kernel, strides, padding):
    return _conv_channels(x, kernel, strides, padding), (x, kernel)


def _conv_bwd(strides, padding, residuals, g):
    x, kernel = residuals
    if strides == (1, 1):
        dx = _input_grad_stride1(g, kernel, padding, x.shape)
    else:
        dx = _input_grad_phases(g, kernel, strides, padding, x.shape)
    _, kernel_vjp = jax.vjp(lambda k: lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=NHWC), kernel)
    return dx.astype(x.dtype), kernel_vjp(g)[0]


_conv_channels.defvjp(_conv_fwd, _conv_bwd)


def _out_size(n, k, s, lo, hi):
    return (n + lo + hi - k) // s + 1


def _one_channel(x, kernel, strides, padding, bias=None, activation=None, column_blocks: int = _COLUMN_BLOCKS):
    """One input channel as ONE matrix product, `activation(conv + bias)` when those are given.

    Rows: `KH` strided row slices give R[b, i, u, w] = xpad[b, sh * i + u, w]. Columns: the
    output columns are cut into `column_blocks` blocks of `jb`; block k reads the `wb = sw (jb - 1)
    + KW` padded columns from `sw jb k`, and a banded (Toeplitz) matrix T[(u, w), (j, f)] =
    kernel[u, w - sw j, 0, f] (0 outside the band) maps them to the block's `jb` output columns.
    So y = [B, H', blocks, KH wb] @ [KH wb, jb F]: (wb / KW) times the multiply-adds of the
    convolution (2.2x for the tutorial's first layer), but no per-tap slices.

    With `bias`, the windows get a column of ones and T a row of the bias tiled `jb` times, so
    the product adds it; the elementwise `activation` then runs on the product's `[..., jb F]`
    rows, before they are cut to NHWC `[B, H', W', F]`.
    """
    (kh, kw, _, f), (sh, sw) = kernel.shape, strides
    b, h, w = x.shape[:3]
    mh, mw = _out_size(h, kh, sh, *padding[0]), _out_size(w, kw, sw, *padding[1])
    jb = -(-mw // min(column_blocks, mw))  # output columns per block
    blocks = -(-mw // jb)
    wb = sw * (jb - 1) + kw
    width = sw * jb * (blocks - 1) + wb  # padded input columns the blocks read
    (top, bottom), (left, _) = padding
    # lax.pad takes negative amounts as crops: the padded image has exactly `width` columns.
    xp = lax.pad(x[..., 0], jnp.zeros((), x.dtype), ((0, 0, 0), (top, bottom, 0), (left, width - left - w, 0)))
    rows = jnp.stack([xp[:, u: u + sh * (mh - 1) + 1: sh, :] for u in range(kh)], axis=2)  # [B, H', KH, width]
    windows = jnp.stack([rows[..., sw * jb * k: sw * jb * k + wb] for k in range(blocks)], axis=2)
    windows = windows.reshape(b, mh, blocks, kh * wb)
    band = _toeplitz(kernel[:, :, 0, :], sw, jb, wb)
    if bias is not None:
        windows = jnp.concatenate([windows, jnp.ones((b, mh, blocks, 1), windows.dtype)], axis=-1)
        band = jnp.concatenate([band, jnp.tile(bias, jb)[None].astype(band.dtype)], axis=0)
    y = _banded_product(windows, band)
    if activation is not None:
        y = activation(y)
    return y.reshape(b, mh, blocks * jb, f)[:, :, :mw]


@jax.custom_vjp
def _banded_product(windows, band):
    """`windows [..., K] @ band [K, N]`, with autodiff's products except that the input
    gradient's `g @ band.T` runs with its output width K zero-padded to a multiple of
    `_GRAD_WIDTH` (see `_banded_bwd`)."""
    return windows @ band


def _banded_fwd(windows, band):
    return windows @ band, (windows, band)


def _banded_bwd(residuals, g):
    """XLA:CPU's product kernels are slow when the output width is not a multiple of the vector
    width (`experiments/benchmarks/xla_cpu_shapes.py`), so `band` gets zero rows and the result
    is cropped."""
    windows, band = residuals
    k = band.shape[0]
    padded = jnp.pad(band, ((0, -k % _GRAD_WIDTH), (0, 0)))
    d_windows = (g @ padded.T)[..., :k]
    d_band = jnp.einsum("...k,...n->kn", windows, g)
    return d_windows, _sum_to_type_of(d_band, band)


_banded_product.defvjp(_banded_fwd, _banded_bwd)


def _sum_to_type_of(cotangent, primal):
    """Under `shard_map`, the cotangent of a value that is the same on every device (a kernel)
    is the sum of the per-device cotangents: autodiff inserts that `psum` for its own rules, a
    `custom_vjp` must do it itself. Outside `shard_map` both sets of axes are empty."""
    extra = tuple(sorted(_varying(cotangent) - _varying(primal)))
    return lax.psum(cotangent, extra) if extra else cotangent


def _varying(x) -> frozenset:
    """The `shard_map` mesh axes along which `x` differs between devices: JAX 0.10 to 0.12 keep
    them in `typeof(x).manual_axis_type.varying`; older releases had `typeof(x).vma`."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)
    return frozenset(manual.varying if manual is not None else getattr(aval, "vma", ()))


def _toeplitz(kernel, stride, jb, wb):
    """`kernel [KH, KW, F]` -> T `[KH * wb, jb * F]`, T[(u, w), (j, f)] = kernel[u, w - stride j, f]
    where 0 <= w - stride j < KW, else 0."""
    kh, kw, f = kernel.shape
    u, w, j = np.meshgrid(np.arange(kh), np.arange(wb), np.arange(jb), indexing="ij")
    v = w - stride * j
    band = (v >= 0) & (v < kw)
    taps = kernel[u, np.clip(v, 0, kw - 1)]  # [KH, wb, jb, F]
    return jnp.where(band[..., None], taps, 0).reshape(kh * wb, jb * f)


def _phase_taps(phase, stride, lo, size):
    """Along one axis of a stride-`stride` convolution with `lo` padding and `size` taps, the
    input positions i = stride * p + phase receive the taps u = u0 + stride * t, t < `taps`,
    from output positions p + q - t. Returns `(u0, q, taps)`."""
    u0 = (phase + lo) % stride
    return u0, (phase + lo - u0) // stride, len(range(u0, size, stride))


def _input_grad_phases(g, kernel, strides, padding, x_shape):
    """Input gradient of a strided convolution from the UNDILATED g: for output phase (a, b)
    (input rows i = sh * p + a, columns j = sw * r + b) a stride-1 correlation of g with the
    flipped sub-kernel of the taps that reach it (`_phase_taps`), the phases then interleaved.

    When `sw * C <= _MERGED_PHASE_CHANNELS`, the column phases of one row phase are ONE
    convolution with `sw * C` output channels ordered (b, c): its output `[B, L, M, sw * C]` is
    already `[B, L, M * sw, C]`, so only the rows are left to interleave. The column sub-kernels
    are zero-padded to a common window (4/3 the multiply-adds for 3 taps at stride 2)."""
    (kh, kw, c, _), (sh, sw) = kernel.shape, strides
    lengths = [-(-x_shape[1 + d] // strides[d]) for d in range(2)]
    columns = [_phase_taps(b, sw, padding[1][0], kw) for b in range(sw)]
    merged = sw * c <= _MERGED_PHASE_CHANNELS
    rows = []
    for a in range(sh):
        u0, q, taps = _phase_taps(a, sh, padding[0][0], kh)
        if not taps:  # no tap reaches this row phase (kernel smaller than the stride)
            rows.append(jnp.zeros((g.shape[0], lengths[0], lengths[1] * sw, c), g.dtype))
            continue
        # [taps, KW, F, C]: the row taps in correlation order, features swapped
        sub = jnp.flip(lax.slice_in_dim(kernel, u0, kh, sh, axis=0), 0).transpose(0, 1, 3, 2)
        row_pads = (taps - 1 - q, lengths[0] - g.shape[1] + q)
        if merged:
            row = _merged_columns(g, sub, columns, sw, row_pads, lengths[1])  # [B, L, M, sw * C]
        else:
            phases = []
            for v0, r, width in columns:
                if not width:
                    phases.append(jnp.zeros((g.shape[0], *lengths, c), g.dtype))
                    continue
                flipped = jnp.flip(lax.slice_in_dim(sub, v0, kw, sw, axis=1), 1)
                pads = (row_pads, (width - 1 - r, lengths[1] - g.shape[2] + r))
                phases.append(lax.conv_general_dilated(g, flipped, (1, 1), pads, dimension_numbers=NHWC))
            row = jnp.stack(phases, axis=3)  # [B, L, M, sw, C]
        rows.append(row.reshape(g.shape[0], lengths[0], lengths[1] * sw, c))
    canvas = jnp.stack(rows, axis=2)  # [B, L, sh, M * sw, C]
    canvas = canvas.reshape(g.shape[0], lengths[0] * sh, lengths[1] * sw, c)
    return canvas[:, : x_shape[1], : x_shape[2]]


def _merged_columns(g, sub, columns, sw, row_pads, length):
    """One row phase's column phases as one correlation: phase b's output at column r is
    sum_t g[r + q_b - t] sub[:, v0_b + sw t], i.e. sum over offsets d = q_b - t in a window
    [d_lo, d_hi] shared by all phases, zero where phase b has no tap. -> `[B, L, length, sw * C]`."""
    d_lo = min(r - width + 1 for _, r, width in columns if width)
    d_hi = max(r for _, r, width in columns if width)
    zero = jnp.zeros_like(sub[:, 0])
    window = []
    for v0, r, width in columns:  # [taps, d_hi - d_lo + 1, F, C] per phase
        taps = [sub[:, v0 + sw * (r - d)] if 0 <= r - d < width else zero for d in range(d_lo, d_hi + 1)]
        window.append(jnp.stack(taps, axis=1))
    k = jnp.stack(window, axis=3)  # [taps, T, F, sw, C]
    k = k.reshape(*k.shape[:3], -1)
    pads = (row_pads, (-d_lo, length - g.shape[2] + d_hi))
    return lax.conv_general_dilated(g, k, (1, 1), pads, dimension_numbers=NHWC)


def _input_grad_stride1(g, kernel, padding, x_shape):
    transposed = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)  # [KH, KW, F, C]
    pads = []
    for d in range(2):
        k, lo = kernel.shape[d], padding[d][0]
        pads.append((k - 1 - lo, x_shape[1 + d] - g.shape[1 + d] - (k - 1 - lo) + k - 1))
    return lax.conv_general_dilated(g, transposed, (1, 1), pads, dimension_numbers=NHWC)


def loop_friendly_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                       dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                       precision=None, preferred_element_type=None):
    """Drop-in for `lax.conv_general_dilated` as Flax's `nn.Conv(conv_general_dilated=...)`:
    2-D NHWC / HWIO convolutions with explicit padding go through `conv_nhwc`; anything else
    (dilation, groups, string padding, other layouts) goes to `lax.conv_general_dilated`."""
    plain = (
        lhs.ndim == 4
        and not isinstance(padding, str)
        and all(d in (None, 1) for d in (lhs_dilation or (1,)) + (rhs_dilation or (1,)))
        and feature_group_count == 1
        and batch_group_count == 1
        and precision is None
        and preferred_element_type is None
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)
    )
    if not plain:
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count, precision, preferred_element_type)
    return conv_nhwc(lhs, rhs, window_strides, padding)


# The drop-in's fused form: a layer computing `activation(conv + bias)` (`energies.ConvAct`) calls
# `conv.bias_act(...)` when its `conv` has one, so the CPU path can fold bias and activation in.
loop_friendly_conv.bias_act = conv_bias_act
