"""ebm_jax vs BlackJAX: MALA and HMC on a 50-D Gaussian with condition number 100.

    pip install -e ".[bench]"     # BlackJAX (optional; the library never imports it)
    python experiments/benchmarks/samplers_vs_blackjax.py [--chains 1024] [--steps 1000] [--rounds 3]

Both libraries get the same target (a fixed rotation of eigenvalues geometric in [0.1, 10]), the
same starts, step sizes (from one ebm_jax dual-averaging warm-up), number of leapfrog steps and
number of steps; each run is one jitted `lax.scan` over steps with the chains vmapped, timed
after compilation, for `--rounds` rounds in A B / B A order (who runs first alternates). ESS is the multi-chain
ESS of `ebm_jax.samplers.diagnostics` (it agrees with BlackJAX's) on the same draws; ESS/s uses
the smallest ESS over the 50 dimensions. Prints one JSON line per run and a table of medians.
"""

import argparse
import json
import platform
import time

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.energies import analytic
from ebm_jax.samplers import adaptation, diagnostics, hmc, mala


def ebm_runner(name, energy_fn, step_size, num_integration_steps, num_steps):
    if name == "mala":
        init, kernel, params = mala.init, mala.build_kernel(), dict(step_size=step_size)
    else:
        init, kernel = hmc.init, hmc.build_kernel()
        params = dict(step_size=step_size, num_integration_steps=num_integration_steps)

    @jax.jit
    def run(key, starts):
        states = jax.vmap(lambda x: init(x, energy_fn))(starts)

        def body(states, key):
            keys = jax.random.split(key, starts.shape[0])
            states, info = jax.vmap(lambda k, s: kernel(k, s, energy_fn, **params))(keys, states)
            return states, (states.position, info.acceptance_rate)

        return jax.lax.scan(body, states, jax.random.split(key, num_steps))[1]

    return run


def blackjax_runner(name, energy_fn, step_size, num_integration_steps, num_steps):
    logdensity = lambda x: -energy_fn(x)
    if name == "mala":
        algorithm = blackjax.mala(logdensity, step_size)
    else:
        algorithm = blackjax.hmc(logdensity, step_size, jnp.ones(50), num_integration_steps)

    @jax.jit
    def run(key, starts):
        states = jax.vmap(algorithm.init)(starts)

        def body(states, key):
            keys = jax.random.split(key, starts.shape[0])
            states, info = jax.vmap(algorithm.step)(keys, states)
            return states, (states.position, info.acceptance_rate)

        return jax.lax.scan(body, states, jax.random.split(key, num_steps))[1]

    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chains", type=int, default=1024)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--leapfrog-steps", type=int, default=20)
    args = p.parse_args()
    cov = analytic.ill_conditioned_covariance(50, 100.0, seed=0)
    energy_fn = analytic.gaussian(cov)
    starts = jnp.asarray(np.random.default_rng(1).multivariate_normal(np.zeros(50), cov, size=args.chains), jnp.float32)
    context = dict(device=str(jax.devices()[0]), jax=jax.__version__, blackjax=blackjax.__version__,
                   machine=platform.machine(), chains=args.chains, steps=args.steps)
    rows = []
    for name, target_accept in (("mala", 0.574), ("hmc", 0.8)):
        init, kernel = (mala.init, mala.build_kernel()) if name == "mala" else (hmc.init, hmc.build_kernel())
        extra = {} if name == "mala" else {"num_integration_steps": args.leapfrog_steps}
        warm_states = jax.vmap(lambda x: init(x, energy_fn))(starts[:256])
        step_size, _ = jax.jit(lambda k, s: adaptation.warmup(k, kernel, s, energy_fn, 500, 0.01, target_accept, **extra))(
            jax.random.key(7), warm_states)
        step_size = float(step_size)
        runners = {lib: make(name, energy_fn, step_size, args.leapfrog_steps, args.steps)
                   for lib, make in (("ebm_jax", ebm_runner), ("blackjax", blackjax_runner))}
        for lib, run in runners.items():  # compile both first
            tic = time.perf_counter()
            jax.block_until_ready(run(jax.random.key(0), starts))
            print(json.dumps(dict(context, sampler=name, library=lib, what="compile_s", value=time.perf_counter() - tic)))
        results = {lib: [] for lib in runners}
        for r in range(args.rounds):
            order = list(runners.items())
            for lib, run in (order if r % 2 == 0 else order[::-1]):  # A B, B A, A B, ...
                tic = time.perf_counter()
                draws, accept = jax.block_until_ready(run(jax.random.key(100 + r), starts))
                wall = time.perf_counter() - tic
                ess = diagnostics.effective_sample_size(np.swapaxes(np.asarray(draws), 0, 1))
                record = dict(context, sampler=name, library=lib, round=r, step_size=step_size,
                              leapfrog_steps=args.leapfrog_steps if name == "hmc" else None,
                              wall_s_per_1000_steps=wall * 1000 / args.steps, min_ess=float(ess.min()),
                              min_ess_per_s=float(ess.min()) / wall, acceptance=float(np.mean(accept)))
                results[lib].append(record)
                print(json.dumps(record))
        med = {lib: {k: float(np.median([r[k] for r in recs])) for k in ("wall_s_per_1000_steps", "min_ess_per_s", "acceptance", "min_ess")}
               for lib, recs in results.items()}
        rows.append((name, step_size, med))
    print()
    print("| sampler | step size | library | s / 1000 steps | min ESS | min ESS / s | acceptance | ESS/s ratio (ebm_jax / BlackJAX) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, step_size, med in rows:
        ratio = med["ebm_jax"]["min_ess_per_s"] / med["blackjax"]["min_ess_per_s"]
        speed = med["blackjax"]["wall_s_per_1000_steps"] / med["ebm_jax"]["wall_s_per_1000_steps"]
        for lib in ("ebm_jax", "blackjax"):
            m = med[lib]
            tail = f"{ratio:.2f} (wall-time ratio {speed:.2f})" if lib == "ebm_jax" else ""
            print(f"| {name} | {step_size:.4g} | {lib} | {m['wall_s_per_1000_steps']:.3f} | {m['min_ess']:.0f} | "
                  f"{m['min_ess_per_s']:.1f} | {m['acceptance']:.3f} | {tail} |")


if __name__ == "__main__":
    main()
