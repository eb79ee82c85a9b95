"""Runs three train steps on one device and on a Mesh over all devices; prints the max
differences as JSON. Run with XLA_FLAGS=--xla_force_host_platform_device_count=8 (see
test_train_step.py); it is a script because the device count is fixed when JAX starts."""

import json

import jax
import numpy as np
from jax.sharding import Mesh

from ebm_jax.energies import TutorialCNN
from ebm_jax.train import create_train_state, make_train_step, shard_state, train_shardings, tutorial_optimizer


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

    diff = lambda a, b: float(max(np.max(np.abs(np.asarray(x) - np.asarray(y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))
    print(json.dumps({
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
