"""One process of a multi-process `fit` run on localhost (see test_multiprocess.py): replay CD of
a small MLP energy on fixed 2-D batches of 16, a hook and `best`, checkpoints every 3 steps.

    python multiprocess_fit.py --num-processes N --process-id I --port P --workdir W --steps S
                               [--signal-at K] [--blow-up-at K]

N = 1: one process on one device, no mesh (the reference). N > 1: `parallel.initialize` on
localhost:P, two CPU devices per process, one mesh over all of them; each process feeds its rows
of every batch. `--signal-at K`: process 1 sends itself SIGTERM after step K (from its hook).
`--blow-up-at K`: process 1's rows of batch K are multiplied by 1e30, once (a divergence; the run
rolls back with `Rollback`).
Writes W/params_<N>_<I>.npy (the final params, flattened) and exits 0, 130 when interrupted, 2
on a refused run (the message on stderr)."""

import argparse
import os
import signal
import sys

import jax

from ebm_jax import parallel

BATCH, STEPS_OF_DATA = 16, 32


def main():
    p = argparse.ArgumentParser()
    for name in ("--num-processes", "--process-id", "--port", "--steps"):
        p.add_argument(name, type=int, required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--signal-at", type=int, default=None)
    p.add_argument("--blow-up-at", type=int, default=None)
    args = p.parse_args()
    if args.num_processes > 1:
        parallel.initialize(f"localhost:{args.port}", args.num_processes, args.process_id, cpu_devices=2)
    import numpy as np
    import optax

    from ebm_jax.energies import MLPEnergy
    from ebm_jax.samplers import langevin
    from ebm_jax.train import Hook, Rollback, create_train_state, fit, make_train_step, objectives, shard_state

    data = np.asarray(jax.random.normal(jax.random.key(6), (STEPS_OF_DATA, BATCH, 2)))
    bounds = (-4.0, 4.0)
    objective = objectives.replay_cd(langevin.spec(3, 0.01, bounds=bounds), bounds, 64)
    model, optimizer = MLPEnergy((16, 16)), optax.adam(1e-2)
    state = create_train_state(jax.random.key(0), model, objective, optimizer, data[0])
    mesh = parallel.data_mesh() if args.num_processes > 1 else None
    rows = slice(None) if mesh is None else parallel.process_rows(mesh, BATCH)

    blown_up = []

    def batch_fn(t):
        batch = data[t % STEPS_OF_DATA][rows]
        if t == args.blow_up_at and not blown_up and jax.process_index() == 1:
            blown_up.append(t)
            return batch * 1e30
        return batch

    def hook(state, writer):
        if args.signal_at is not None and int(state.step) == args.signal_at and jax.process_index() == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"minus_energy": -float(model.apply({"params": state.params["energy"]}, data[0]).mean())}

    try:
        make_step = lambda scale=1.0: make_train_step(model.apply, objective, optimizer, mesh=mesh,
                                                      learning_rate_scale=scale)
        state, _ = fit(
            make_step(), state, batch_fn, args.steps, args.workdir, hooks=[Hook(hook, 2)], log_every=2,
            rollback=Rollback(make_step),
            checkpoint_every=3, best_metric="minus_energy", resume=True, progress=False, tensorboard=False,
            place_state=(lambda s: s) if mesh is None else (lambda s: shard_state(s, mesh)),
            place_batch=(lambda b: b) if mesh is None else (lambda b: parallel.global_batch(b, mesh)))
    except KeyboardInterrupt as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return 130
    except FileExistsError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    params = jax.tree.leaves(parallel.host_local(state).params)
    np.save(os.path.join(args.workdir, f"params_{args.num_processes}_{args.process_id}.npy"),
            np.concatenate([np.ravel(np.asarray(x)) for x in params]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
