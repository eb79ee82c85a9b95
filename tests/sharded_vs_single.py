"""Runs three train steps on one device and on a Mesh over all devices; prints the max
differences as JSON. Run with XLA_FLAGS=--xla_force_host_platform_device_count=8 (see
test_train_step.py); it is a script because the device count is fixed when JAX starts."""

import json

import jax
import numpy as np
from jax.sharding import Mesh

from ebm_jax import parallel
from ebm_jax.energies import TutorialCNN
from ebm_jax.samplers import langevin, mala
from ebm_jax.train import create_train_state, make_train_step, shard_state, train_shardings, tutorial_optimizer
from ebm_jax.train.objectives import ChainSampler, run_sampler


def main():
    devices = jax.devices()
    model = TutorialCNN(features=8)
    optimizer = tutorial_optimizer(steps_per_epoch=10)
    kwargs = dict(num_mcmc_steps=5)
    batches = jax.random.uniform(jax.random.key(5), (3, 16, 28, 28, 1), minval=-1, maxval=1)

    def fresh_state():
        return create_train_state(jax.random.key(0), model, optimizer, (28, 28, 1), 16, buffer_capacity=64)

    single = make_train_step(model.apply, optimizer, **kwargs)
    state_single = jax.device_put(fresh_state(), devices[0])
    for batch in batches:
        state_single, metrics_single = single(state_single, jax.device_put(batch, devices[0]))

    mesh = Mesh(np.array(devices), ("data",))
    sharded = make_train_step(model.apply, optimizer, mesh=mesh, **kwargs)
    _, batch_sharding, _ = train_shardings(mesh)
    state_sharded = shard_state(fresh_state(), mesh)
    for batch in batches:
        state_sharded, metrics_sharded = sharded(state_sharded, jax.device_put(batch, batch_sharding))

    diff = lambda a, b: float(max(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))

    # The sampler alone, split over the mesh with shard_map: the same draws as on one device.
    params = state_single.params
    energy_fn = lambda x: model.apply(params, x)
    starts = jax.random.uniform(jax.random.key(7), (32, 28, 28, 1), minval=-1, maxval=1)
    samplers = {"langevin": ChainSampler(langevin.init, langevin.build_kernel("noise_first"), langevin.tutorial_params(), 4),
                "langevin_ahead": ChainSampler(langevin.init, langevin.build_move("noise_first"),
                                               langevin.tutorial_params(), 4, langevin.draw),
                "mala": ChainSampler(mala.init, mala.build_kernel(), dict(step_size=1.0), 4),
                # 4 chains per device, run 2 at a time (on one device: 16 groups of 2)
                "langevin_grouped": ChainSampler(langevin.init, langevin.build_move("noise_first"),
                                                 langevin.tutorial_params(), 4, langevin.draw, chain_group=2),
                "mala_grouped": ChainSampler(mala.init, mala.build_kernel(), dict(step_size=1.0), 4, chain_group=2)}
    sampler, ones, runs = {}, {}, {}
    for name, chain_sampler in samplers.items():
        one = ones[name] = jax.jit(lambda key, x: run_sampler(key, chain_sampler, energy_fn, x))(jax.random.key(3), starts)
        split = runs[name] = jax.jit(lambda key, x: run_sampler(key, chain_sampler, energy_fn, x, mesh))(
            jax.random.key(3), starts)
        sampler[name] = {"positions_max_abs_diff": diff(one[0], split[0]),
                         "moved": diff(one[0], starts),
                         "positions_sharded": not split[0].sharding.is_fully_replicated}
    sampler["langevin_ahead"]["vs_key_max_abs_diff"] = diff(ones["langevin"][0], runs["langevin_ahead"][0])
    for grouped, whole in (("langevin_grouped", "langevin_ahead"), ("mala_grouped", "mala")):
        sampler[grouped]["vs_ungrouped_max_abs_diff"] = diff(runs[grouped], runs[whole])
    sampler["mala_grouped"]["accept_decisions_equal"] = bool(
        np.array_equal(runs["mala_grouped"][1].is_accepted, runs["mala"][1].is_accepted))
    one, split = ones["mala"], runs["mala"]
    sampler["mala"].update(
        info_shape=list(split[1].acceptance_rate.shape),
        accept_decisions_equal=bool(np.array_equal(one[1].is_accepted, split[1].is_accepted)),
        # exp of a log ratio of two 784-D Gaussian terms: rounding differs with the batch split
        acceptance_rate_max_abs_diff=diff(one[1].acceptance_rate, split[1].acceptance_rate),
        acceptance=float(np.mean(one[1].acceptance_rate)))
    print(json.dumps({
        "sampler": sampler,
        "parallel_axis": parallel.DATA_AXIS,
        "num_devices": len(devices),
        "buffer_replicated": bool(state_sharded.buffer.samples.sharding.is_fully_replicated),
        "params_replicated": all(a.sharding.is_fully_replicated for a in jax.tree.leaves(state_sharded.params)),
        "params_max_abs_diff": diff(state_single.params, state_sharded.params),
        "params_max_abs": diff(state_single.params, jax.tree.map(np.zeros_like, state_single.params)),
        "buffer_max_abs_diff": diff(state_single.buffer.samples, state_sharded.buffer.samples),
        "loss_single": float(metrics_single["loss"]),
        "loss_sharded": float(metrics_sharded["loss"]),
        "steps": [int(state_single.step), int(state_sharded.step)],
    }))


if __name__ == "__main__":
    main()
