"""A measured negative result: space-to-depth for the stride-2 conv layers.

    python experiments/benchmarks/space_to_depth.py

A stride-2 k x k convolution equals a stride-1 ceil(k/2) x ceil(k/2) convolution on the input
rearranged 2x2 space-to-depth (4x the channels; the kernel zero-padded to even size and
rearranged the same way). That removes the per-phase pads and slices of the input gradient, at
the price of (2 ceil(k/2) / k)^2 more multiply-adds (16/9 for 3x3). The script checks the
formulation against `lax` (forward and input gradient), then times the tutorial Langevin step
(128 images, 60-step scan, 5 calls per median, alternating order) with the layers of more than
one input channel in space-to-depth form against ebm_jax's default `loop_friendly_conv`.
Prototype only: not used by the library.
"""
import time, numpy as np, jax, jax.numpy as jnp
from jax import lax
from ebm_jax import presets  # noqa: E402
from ebm_jax.energies import TutorialCNN, per_example
from ebm_jax.kernels import loop_friendly_conv, conv_nhwc
from ebm_jax.samplers import langevin, run_chains

def s2d_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
             feature_group_count=1, batch_group_count=1, precision=None, preferred_element_type=None):
    if tuple(window_strides) != (2, 2) or lhs.shape[-1] == 1:
        return loop_friendly_conv(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers or ("NHWC", "HWIO", "NHWC"),
                                  feature_group_count, batch_group_count, precision, preferred_element_type)
    B, H, W, C = lhs.shape
    k, _, _, O = rhs.shape
    k2 = -(-k // 2)
    (plo, phi), (qlo, qhi) = padding
    ho = (H + plo + phi - k) // 2 + 1
    wo = (W + qlo + qhi - k) // 2 + 1
    hp, wp = 2 * (ho + k2 - 1), 2 * (wo + k2 - 1)
    x = lax.pad(lhs, jnp.zeros((), lhs.dtype), ((0, 0, 0), (plo, hp - H - plo, 0), (qlo, wp - W - qlo, 0), (0, 0, 0)))
    x = x.reshape(B, hp // 2, 2, wp // 2, 2, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, hp // 2, wp // 2, 4 * C)
    w = jnp.pad(rhs, ((0, 2 * k2 - k), (0, 2 * k2 - k), (0, 0), (0, 0)))
    w = w.reshape(k2, 2, k2, 2, C, O).transpose(0, 2, 1, 3, 4, 5).reshape(k2, k2, 4 * C, O)
    return conv_nhwc(x, w, (1, 1), ((0, 0), (0, 0)))

# correctness vs lax
for (k, pad, c, o, h) in [(5, 4, 1, 16, 28), (3, 1, 16, 32, 16), (3, 1, 32, 64, 8), (3, 1, 64, 64, 4)]:
    x = jax.random.normal(jax.random.key(0), (4, h, h, c)); w = jax.random.normal(jax.random.key(1), (k, k, c, o))
    P = ((pad, pad), (pad, pad))
    ref = lambda x: lax.conv_general_dilated(x, w, (2, 2), P, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    new = lambda x: s2d_conv(x, w, (2, 2), P)
    g = jax.random.normal(jax.random.key(2), ref(x).shape)
    print(k, c, o, float(jnp.abs(ref(x) - new(x)).max()),
          float(jnp.abs(jax.vjp(ref, x)[1](g)[0] - jax.vjp(new, x)[1](g)[0]).max()))

def med(f, a, r):
    jax.block_until_ready(f(*a)); ts = []
    for _ in range(r):
        t = time.perf_counter(); jax.block_until_ready(f(*a)); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

x = jax.random.uniform(jax.random.key(1), (128, 28, 28, 1), minval=-1, maxval=1)
kernel, sp = langevin.build_kernel("noise_first"), presets.tutorial_sampler().params
fns = {}
for name, conv in [("loop_friendly", loop_friendly_conv), ("s2d", s2d_conv)]:
    model = TutorialCNN(conv=conv)
    params = TutorialCNN().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    e = per_example(model.apply, params)
    step = lambda key, s, e=e: kernel(key, s, e, **sp)
    fns[name] = (jax.jit(lambda key, s, step=step: run_chains(key, step, s, 60)[0]), model, params)
states = jax.vmap(langevin.init)(x)
e0 = fns["loop_friendly"][1].apply(fns["loop_friendly"][2], x); e1 = fns["s2d"][1].apply(fns["s2d"][2], x)
print("energy diff", float(jnp.abs(e0 - e1).max()))
for rnd in range(3):
    for name in (["loop_friendly", "s2d"] if rnd % 2 == 0 else ["s2d", "loop_friendly"]):
        t = med(fns[name][0], (jax.random.key(3), states), 5)
        print(rnd, name, f"{1e3 * t / 60:.2f} ms/step", flush=True)
