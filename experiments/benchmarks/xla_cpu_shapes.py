"""How the SHAPE of an array changes XLA:CPU's speed on the same data, at the tutorial CNN's sizes.

    python experiments/benchmarks/xla_cpu_shapes.py [--repeats 15]

Two probes, each op inside a jitted 60-step `lax.scan` (as in the sampler), one JSON line per
measurement (median ms per scan step over `--repeats` calls), then a table:

* elementwise: `x * c`, `tanh(x / 2)` and Swish on 262,144 floats (the first layer's activation
  for 64 images) laid out as `[64, 16, 16, 16]` (NHWC, 16 channels: the minor dimension is 16),
  `[64, 8, 8, 32]`-sized arrays, and the same data viewed with a long minor dimension;
* matrix products at the first layer's banded-product shapes: `[4096, 55] @ [55, 64]` (forward),
  `[4096, 64] @ [64, 55]` (its input gradient) and the gradient's shape with N padded to 64.
  Each product is added back into the scan's carry (cropped or zero-padded to its shape), so
  these times include one elementwise pass.

Run it pinned to one core (`taskset -c 0`) to see one XLA device's per-core speed.
"""

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 60
ELEMENTWISE = {
    "multiply": lambda x: x * 1.0001,
    "tanh": lambda x: jnp.tanh(0.5 * x),
    "swish": lambda x: x * (0.5 + 0.5 * jnp.tanh(0.5 * x)),
}
SHAPES = [(64, 16, 16, 16), (64, 16, 256), (4096, 64), (262144,), (64, 8, 8, 32), (64, 8, 256)]
PRODUCTS = [(4096, 55, 64), (4096, 64, 55), (4096, 64, 64)]


def scan_ms(body, x, repeats):
    """Median wall time of one step of a jitted STEPS-long scan of `body` from `x`, in ms."""
    run = jax.jit(lambda x: jax.lax.scan(lambda c, _: (body(c), None), x, None, length=STEPS)[0])
    jax.block_until_ready(run(x))
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(run(x))
        times.append(time.perf_counter() - tic)
    return 1e3 * float(np.median(times)) / STEPS


def _product_step(c, b):
    """c + 1e-3 (c @ b), the product's columns cropped or zero-padded to c's (the carry keeps its shape)."""
    y, k = c @ b, c.shape[1]
    y = y[:, :k] if y.shape[1] >= k else jnp.pad(y, ((0, 0), (0, k - y.shape[1])))
    return c + 1e-3 * y


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    context = dict(jax=jax.__version__, device=str(jax.devices()[0]))
    rows = []
    for name, fn in ELEMENTWISE.items():
        for shape in SHAPES:
            x = jax.random.normal(jax.random.key(0), shape)
            ms = scan_ms(fn, x, args.repeats)
            rows.append((f"{name} {list(shape)}", ms, ""))
            print(json.dumps(dict(context, what="elementwise", op=name, shape=shape, ms=ms)))
    for m, k, n in PRODUCTS:
        a = jax.random.normal(jax.random.key(1), (m, k))
        b = 0.01 * jax.random.normal(jax.random.key(2), (k, n))
        ms = scan_ms(functools.partial(_product_step, b=b), a, args.repeats)
        gflops = 2 * m * k * n / ms / 1e6
        rows.append((f"[{m} x {k}] @ [{k} x {n}]", ms, f"{gflops:.0f} GFLOP/s"))
        print(json.dumps(dict(context, what="matmul", m=m, k=k, n=n, ms=ms, gflops=gflops)))
    print("\n| array / product | ms per step | |\n|---|---|---|")
    for label, ms, extra in rows:
        print(f"| {label} | {ms:.3f} | {extra} |")


if __name__ == "__main__":
    main()
