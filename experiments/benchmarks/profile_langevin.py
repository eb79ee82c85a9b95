"""Where the time of one tutorial Langevin step goes, by XLA fusion kind.

    python experiments/benchmarks/profile_langevin.py [--repeats 3] [--chains 128] [--trace-dir /tmp/ebm_profile]

Traces `--repeats` calls of a jitted 60-step scan (`--chains` images, 128 by default) with `jax.profiler`, reads the
trace's per-op events and prints milliseconds per Langevin step for each fusion kind (the HLO
op name without its numeric suffix), largest first. On CPU, `ynn_fusion` ops are the matrix
products (XNNPACK / YNNPACK kernels); the RNG shows as `broadcast_add` fusions and `while`
loops (threefry) and `log-plus-one` / `negate_sqrt` fusions (erf-inverse); Swish as `tanh` /
`multiply` fusions. (With the earlier 25-tap first layer, `pad_slice_fusion`s were the patches.)
Summed op times can exceed the wall time: ops of the two threads overlap.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re

import jax
import jax.numpy as jnp

from ebm_jax import presets  # noqa: E402
from ebm_jax.energies import TutorialCNN, per_example
from ebm_jax.samplers import langevin, run_chains

STEPS = 60


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trace-dir", default="/tmp/ebm_profile")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--chains", type=int, default=128)
    args = p.parse_args()
    model = TutorialCNN()
    params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    energy_fn = per_example(model.apply, params)
    move, sampler_params = langevin.build_move("noise_first"), presets.tutorial_sampler().params
    x = jax.random.uniform(jax.random.key(1), (args.chains, 28, 28, 1), minval=-1, maxval=1)
    states = jax.vmap(langevin.init)(x)
    step = lambda z, s: move(z, s, energy_fn, **sampler_params)
    scan = jax.jit(lambda key, s: run_chains(key, step, s, STEPS, draw=langevin.draw)[0])
    jax.block_until_ready(scan(jax.random.key(2), states))
    jax.profiler.start_trace(args.trace_dir)
    for i in range(args.repeats):
        jax.block_until_ready(scan(jax.random.key(3 + i), states))
    jax.profiler.stop_trace()

    path = max(glob.glob(os.path.join(args.trace_dir, "**", "*.trace.json.gz"), recursive=True), key=os.path.getmtime)
    with gzip.open(path) as f:
        events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
    per_kind = collections.Counter()
    for e in events:
        name = e["name"]
        if name.startswith(("$", "Thunk", "end: ", "Pjit", "Slinky")):
            continue
        per_kind[re.sub(r"\.\d+$", "", name)] += e["dur"]
    scale = 1e3 * args.repeats * STEPS  # microseconds -> ms per Langevin step
    total = sum(per_kind.values())
    print(json.dumps(dict(measure="op_time_per_step_ms", chains=args.chains, backend=jax.default_backend(),
                          total=total / scale, trace=path)))
    for kind, micros in per_kind.most_common(args.top):
        print(json.dumps(dict(kind=kind, ms_per_step=round(micros / scale, 3), share=round(micros / total, 3))))


if __name__ == "__main__":
    main()
