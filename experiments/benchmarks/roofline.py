"""How far the Langevin step is from the device's matmul throughput.

    python experiments/benchmarks/roofline.py [--repeats 20] [--cpu-devices N]

1. fp32 matmul throughput: jitted `a @ b` for square sizes 512 ... 4096, on one device and,
   with the CPU split into devices (`--cpu-devices`, default one per core), with the rows of `a`
   split over all of them (best median GFLOP/s of either is the "roof": what XLA's GEMM reaches
   with all cores), and at the four conv layers' shapes as products over a batch of 128.
2. The tutorial's Langevin step on 128 images (one energy forward + input gradient per step):
   its FLOPs from XLA's cost analysis of one step and from counting the network's MACs by hand
   (conv and dense layers only), its time per step from a jitted 60-step run, on one device
   and with the chains split over all devices (`samplers.sample(..., mesh=)`, ebm_jax's CPU default).
Prints one JSON line per measurement and a summary line with achieved GFLOP/s and the
fraction of the roof.
"""

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ebm_jax import presets  # noqa: E402
from ebm_jax import parallel
from ebm_jax.energies import TutorialCNN, per_example
from ebm_jax.samplers import langevin
from ebm_jax.samplers import sample


def median_seconds(fn, args, repeats):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def matmul_roof(repeats, mesh):
    best = 0.0
    for n in (512, 1024, 2048, 4096):
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
        b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
        placements = {"one_device": (a, b)}
        if mesh.size > 1:
            rows = jax.device_put(a, NamedSharding(mesh, PartitionSpec(parallel.DATA_AXIS)))
            placements["rows_split"] = (rows, jax.device_put(b, NamedSharding(mesh, PartitionSpec())))
        for placement, args in placements.items():
            seconds = median_seconds(jax.jit(jnp.matmul), args, max(3, repeats // (n // 512)))
            gflops = 2 * n**3 / seconds / 1e9
            print(json.dumps(dict(measure="matmul_fp32", n=n, placement=placement, seconds=seconds,
                                  gflops=gflops)), flush=True)
            best = max(best, gflops)
    return best


# [m x k] x [k x n] over 128 images. Layer 1 is the banded product of `conv._one_channel`
# (128 x 16 rows x 4 column blocks, 5 rows x 11 columns in, 4 columns x 16 features out);
# layers 2-4 as im2col patches x kernel.
CONV_GEMMS = ((8192, 55, 64), (8192, 144, 32), (2048, 288, 64), (512, 576, 64))


def thin_gemms(repeats):
    """GFLOP/s of the four conv layers' products as plain GEMMs (batch 128)."""
    for m, k, n in CONV_GEMMS:
        a = jax.random.normal(jax.random.key(0), (m, k), jnp.float32)
        b = jax.random.normal(jax.random.key(1), (k, n), jnp.float32)
        seconds = median_seconds(jax.jit(jnp.matmul), (a, b), repeats)
        print(json.dumps(dict(measure="matmul_fp32_conv_shape", m=m, k=k, n=n, seconds=seconds,
                              gflops=2 * m * k * n / seconds / 1e9)), flush=True)


def counted_forward_flops(features=32):
    """2 x MACs of TutorialCNN's conv and dense layers for one 28x28x1 image."""
    c = features
    layers = [  # (output pixels, output channels, kernel taps, input channels)
        (16 * 16, c // 2, 25, 1), (8 * 8, c, 9, c // 2), (4 * 4, 2 * c, 9, c), (2 * 2, 2 * c, 9, 2 * c),
    ]
    macs = sum(p * co * k * ci for p, co, k, ci in layers) + (4 * 2 * c) * (2 * c) + 2 * c
    return 2 * macs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="XLA devices to split the CPU into (default: the cores this process may use)")
    args = p.parse_args()
    parallel.split_cpu(args.cpu_devices)
    mesh = parallel.data_mesh()
    print(json.dumps(dict(measure="context", jax=jax.__version__, device=str(jax.devices()[0]),
                          devices=len(jax.devices()), machine=platform.machine(),
                          cpus=__import__("os").cpu_count())), flush=True)
    roof = matmul_roof(args.repeats, mesh)
    thin_gemms(args.repeats)

    model = TutorialCNN()
    params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    energy_fn = per_example(model.apply, params)
    kernel, sampler_params = langevin.build_kernel("noise_first"), presets.tutorial_sampler().params
    x = jax.random.uniform(jax.random.key(1), (args.batch_size, 28, 28, 1), minval=-1, maxval=1)
    states = jax.vmap(langevin.init)(x)
    step = lambda key, s: kernel(key, s, energy_fn, **sampler_params)

    one_step = jax.jit(lambda key, s: jax.vmap(step)(jax.random.split(key, args.batch_size), s))
    cost = one_step.lower(jax.random.key(2), states).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    xla_flops = float(cost.get("flops", float("nan")))
    counted = 2 * counted_forward_flops() * args.batch_size  # forward + input gradient ~ 2 forwards

    steps = 60
    sampler = presets.tutorial_sampler(steps)
    meshes = {"one_device": None, f"{mesh.size}_devices": mesh} if mesh.size > 1 else {"one_device": None}
    for placement, run_mesh in meshes.items():
        run = jax.jit(lambda key, x, m=run_mesh: sample(key, sampler, energy_fn, x, mesh=m)[0].position)
        seconds = median_seconds(run, (jax.random.key(3), x), max(3, args.repeats // 4)) / steps
        summary = dict(
            measure="langevin_step_roofline",
            placement=placement,
            batch_size=args.batch_size,
            ms_per_step=1e3 * seconds,
            flops_xla_cost_analysis=xla_flops,
            flops_counted=counted,
            gflops_achieved_counted=counted / seconds / 1e9,
            gflops_achieved_xla=xla_flops / seconds / 1e9,
            matmul_roof_gflops=roof,
            fraction_of_roof=counted / seconds / 1e9 / roof,
        )
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
