"""Speed of the MNIST train step and of the Langevin sampler (the tutorial's settings).

    python experiments/benchmarks/train_step.py [--batch-size 128] [--mcmc-steps 60] [--repeats 10]
                                                [--conv loop_friendly|lax|reformulated]

Prints one JSON line per measurement: compile time, then median / min wall time per call over
`--repeats` calls (each blocked until ready), on random [-1, 1] images. Runs on whatever
device JAX picks (CPU here; a GPU where jax[cuda] is installed).

`--conv`: `loop_friendly` is the library's default (on CPU the reformulated convolutions of
`ebm_jax.kernels`, elsewhere XLA's own); `lax` is plain `lax.conv_general_dilated` with
autodiff's gradients; `reformulated` forces the CPU reformulation on any device, so that a GPU
run can measure it against `lax` there.
"""

import argparse
import json
import platform
import time

import jax
import numpy as np
from jax import lax

from ebm_jax import presets  # noqa: E402
from ebm_jax.energies import TutorialCNN, per_example
from ebm_jax.kernels import loop_friendly_conv, reformulated_conv
from ebm_jax.samplers import langevin, run_chains
from ebm_jax.train import create_train_state, make_train_step


def _reformulated_everywhere(lhs, rhs, window_strides, padding, dimension_numbers=None, **unused):
    """`nn.Conv`-compatible: the tutorial CNN's layers are plain NHWC / HWIO with explicit padding."""
    nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
    assert lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == nhwc and not isinstance(padding, str)
    return reformulated_conv(lhs, rhs, window_strides, padding)


CONVS = dict(loop_friendly=loop_friendly_conv, lax=lax.conv_general_dilated, reformulated=_reformulated_everywhere)


def timed(fn, args, repeats):
    tic = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - tic
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - tic)
    return compile_s, times, out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--mcmc-steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--conv", choices=tuple(CONVS), default="loop_friendly",
                   help="the CNN's convolution: ebm_jax's default, plain lax, or the CPU reformulation anywhere")
    args = p.parse_args()
    context = dict(jax=jax.__version__, device=str(jax.devices()[0]), machine=platform.machine(),
                   processor=platform.processor() or platform.machine(), batch_size=args.batch_size,
                   mcmc_steps=args.mcmc_steps, conv=args.conv)

    model = TutorialCNN(conv=CONVS[args.conv])
    optimizer = presets.tutorial_optimizer(steps_per_epoch=100)
    objective = presets.tutorial_objective(presets.tutorial_sampler(args.mcmc_steps))
    batch = jax.random.uniform(jax.random.key(1), (args.batch_size, 28, 28, 1), minval=-1, maxval=1)
    state = create_train_state(jax.random.key(0), model, objective, optimizer, batch)

    # Langevin: the tutorial's loop on a batch, jitted as one scan.
    move = langevin.build_move("noise_first")
    params = presets.tutorial_sampler().params

    @jax.jit
    def sample(key, model_params, x):  # draws made ahead, as the train step runs it
        energy_fn = per_example(model.apply, model_params)
        step = lambda z, s: move(z, s, energy_fn, **params)
        return run_chains(key, step, langevin.LangevinState(x), args.mcmc_steps, draw=langevin.draw)[0].position

    compile_s, times, _ = timed(sample, (jax.random.key(2), {"params": state.params["energy"]}, batch), args.repeats)
    med = float(np.median(times))
    print(json.dumps(dict(context, what="langevin_chain", compile_s=compile_s, median_s=med,
                          min_s=float(np.min(times)), ms_per_langevin_step=1e3 * med / args.mcmc_steps,
                          samples_per_s=args.batch_size / med)))

    # The full train step (sampling + loss + Adam), state threaded through.
    train_step = make_train_step(model.apply, objective, optimizer)
    holder = {"state": state}

    def one_step(batch):
        holder["state"], metrics = train_step(holder["state"], batch)
        return metrics

    compile_s, times, _ = timed(one_step, (batch,), args.repeats)
    med = float(np.median(times))
    print(json.dumps(dict(context, what="train_step", compile_s=compile_s, median_s=med,
                          min_s=float(np.min(times)), steps_per_s=1.0 / med)))


if __name__ == "__main__":
    main()
