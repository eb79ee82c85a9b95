"""Device memory of the tutorial's programs per chain, from XLA's own accounting.

    python experiments/benchmarks/memory.py [--chains 64 128 256 512 1024]

For each chain count (= batch size), compiles (does not run) the 60-step Langevin sampler with
its noise drawn a block of steps ahead (the default), the same sampler drawing each step's noise
in its step, and the whole train step (buffer 8,192), and prints XLA's `memory_analysis()` of
each: arguments, outputs and temporaries (the scratch a run needs on top of its inputs), in MB.
The last lines fit temporaries = a + b * chains and print b, the memory one more chain costs.
On one device; the numbers are the compiler's, the same on every run.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax import presets
from ebm_jax.energies import TutorialCNN, per_example
from ebm_jax.samplers import sample
from ebm_jax.train import create_train_state, make_train_step

SHAPE = (28, 28, 1)


def programs(n: int):
    model = TutorialCNN()
    batch = jnp.zeros((n, *SHAPE), jnp.float32)
    variables = model.init(jax.random.key(0), batch[:1])
    energy_fn = per_example(model.apply, variables)
    spec = presets.tutorial_sampler(60)
    key = jax.random.key(0)
    out = {}
    for label, ahead in (("sampler, draws ahead", True), ("sampler, draws per step", False)):
        fn = jax.jit(lambda k, x, ahead=ahead: sample(k, spec, energy_fn, x, draw_ahead=ahead)[0].position)
        out[label] = fn.lower(key, batch).compile().memory_analysis()
    objective, optimizer = presets.tutorial_objective(spec, 8192), presets.tutorial_optimizer(10)
    state = create_train_state(key, model, objective, optimizer, batch)
    step = make_train_step(model.apply, objective, optimizer)
    out["train step"] = step.lower(state, batch).compile().memory_analysis()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chains", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    args = p.parse_args()
    mb = lambda b: b / 2**20
    temps = {}
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}")
    for n in args.chains:
        for label, stats in programs(n).items():
            temps.setdefault(label, []).append(stats.temp_size_in_bytes)
            print(f"{n:6d} chains  {label:>24s}: arguments {mb(stats.argument_size_in_bytes):8.2f} MB, "
                  f"outputs {mb(stats.output_size_in_bytes):8.2f} MB, temporaries {mb(stats.temp_size_in_bytes):8.2f} MB",
                  flush=True)
    for label, values in temps.items():
        slope, intercept = np.polyfit(args.chains, values, 1)
        print(f"{label:>24s}: temporaries = {mb(intercept):.2f} MB + {slope / 1024:.1f} KB per chain "
              f"(one image is {np.prod(SHAPE) * 4 / 1024:.1f} KB)")


if __name__ == "__main__":
    main()
