"""Every objective for two train steps on one device and on a Mesh over all devices, and the
samplers alone under `shard_map`; prints the differences as JSON. Run with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (see test_train_step.py): a script, because
the device count is fixed when JAX starts."""

import json

import jax
import numpy as np
import optax

from ebm_jax import losses, parallel, presets
from ebm_jax.energies import ClassifierEnergy, MLPEnergy, TutorialCNN, per_example
from ebm_jax.samplers import langevin, mala, sample
from ebm_jax.train import create_train_state, make_train_step, objectives, shard_state, train_shardings

BOUNDS = (-4.0, 4.0)


def objective_cases():
    """name -> (model, objective, two batches of 16, optimizer)"""
    images = jax.random.uniform(jax.random.key(5), (2, 16, 28, 28, 1), minval=-1, maxval=1)
    points = jax.random.normal(jax.random.key(6), (2, 16, 2))
    labels = jax.random.randint(jax.random.key(8), (2, 16), 0, 3)
    cnn, mlp = TutorialCNN(features=8), MLPEnergy((16, 16))
    tutorial_opt, adam = presets.tutorial_optimizer(10), optax.adam(1e-2)
    spec = langevin.spec(3, 0.01, bounds=BOUNDS)
    return {
        "tutorial": (cnn, presets.tutorial_objective(presets.tutorial_sampler(3), 64), images, tutorial_opt),
        "tutorial_grouped": (cnn, presets.tutorial_objective(presets.tutorial_sampler(3, chain_group=1), 64), images,
                             tutorial_opt),
        "tutorial_mala": (cnn, presets.tutorial_objective(mala.spec(3, 1e-3), 64), images, tutorial_opt),
        "replay_cd": (mlp, objectives.replay_cd(spec, BOUNDS, 64), points, adam),
        "persistent_cd": (mlp, objectives.persistent_cd(spec, 32, BOUNDS), points, adam),
        "cd_k": (mlp, objectives.cd_k(spec), points, adam),
        "cd_k_hinge": (mlp, objectives.cd_k(spec, loss="hinge"), points, adam),
        "dsm": (mlp, objectives.dsm(0.1), points, adam),
        "ssm": (mlp, objectives.ssm(2), points, adam),
        "msdsm": (MLPEnergy((16, 16), noise_conditional=True), objectives.msdsm([1.0, 0.3, 0.1]), points, adam),
        "nce": (mlp, objectives.nce(losses.fitted_gaussian(np.asarray(points[0])), nu=2), points, adam),
        "regularised": (mlp, objectives.regularised(objectives.dsm(0.1), 0.1, 0.1), points, adam),
        # Labelled batches {"x", "y"}: every leaf split over the mesh.
        "jem": (ClassifierEnergy(MLPEnergy((16, 16), outputs=3)), objectives.jem(spec, BOUNDS, 64, real_noise=0.01),
                [{"x": points[i], "y": labels[i]} for i in range(2)], adam),
        "jem_pxy": (ClassifierEnergy(MLPEnergy((16, 16), outputs=3)),
                    objectives.jem(spec, BOUNDS, 48, real_noise=0.01, pxy_weight=1.0, num_classes=3),
                    [{"x": points[i], "y": labels[i]} for i in range(2)], adam),
    }


def diff(a, b):
    pairs = list(zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    if not pairs:
        return 0.0
    return float(max(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))) for x, y in pairs))


def main():
    devices = jax.devices()
    mesh = parallel.data_mesh()
    _, batch_sharding, _ = train_shardings(mesh)
    results = {}
    for name, (model, objective, batches, optimizer) in objective_cases().items():
        fresh = lambda: create_train_state(jax.random.key(0), model, objective, optimizer, batches[0])
        single, sharded = make_train_step(model.apply, objective, optimizer), make_train_step(
            model.apply, objective, optimizer, mesh=mesh)
        state_single = jax.device_put(fresh(), devices[0])
        state_sharded = shard_state(fresh(), mesh)
        for batch in batches:
            state_single, metrics_single = single(state_single, jax.device_put(batch, devices[0]))
            state_sharded, metrics_sharded = sharded(state_sharded, jax.device_put(batch, batch_sharding))
        results[name] = {
            "state_replicated": all(a.sharding.is_fully_replicated for a in jax.tree.leaves(state_sharded)
                                    if hasattr(a, "sharding")),
            "params_max_abs_diff": diff(state_single.params, state_sharded.params),
            "params_max_abs": diff(state_single.params, jax.tree.map(np.zeros_like, state_single.params)),
            "objective_state_max_abs_diff": diff(state_single.objective_state, state_sharded.objective_state),
            "metrics_single": {k: float(v) for k, v in metrics_single.items()},
            "metrics_sharded": {k: float(v) for k, v in metrics_sharded.items()},
            "steps": [int(state_single.step), int(state_sharded.step)],
        }

    # The samplers alone, split over the mesh with shard_map: the same draws as on one device.
    model = TutorialCNN(features=8)
    starts = jax.random.uniform(jax.random.key(7), (32, 28, 28, 1), minval=-1, maxval=1)
    variables = model.init(jax.random.key(1), starts[:1])
    energy_fn = per_example(model.apply, variables)
    specs = {"langevin": presets.tutorial_sampler(4), "langevin_grouped": presets.tutorial_sampler(4, chain_group=2),
             "mala": mala.spec(4, 1.0), "mala_grouped": mala.spec(4, 1.0, chain_group=2)}
    samplers = {}
    for name, spec in specs.items():
        one = jax.jit(lambda key, x: sample(key, spec, energy_fn, x))(jax.random.key(3), starts)
        split = jax.jit(lambda key, x: sample(key, spec, energy_fn, x, mesh=mesh))(jax.random.key(3), starts)
        samplers[name] = {"positions_max_abs_diff": diff(one[0].position, split[0].position),
                          "moved": diff(one[0].position, starts),
                          "positions_sharded": not split[0].position.sharding.is_fully_replicated}
        if name.startswith("mala"):
            samplers[name]["accept_decisions_equal"] = bool(np.array_equal(one[2].is_accepted, split[2].is_accepted))
    print(json.dumps({"num_devices": len(devices), "objectives": results, "samplers": samplers}))


if __name__ == "__main__":
    main()
