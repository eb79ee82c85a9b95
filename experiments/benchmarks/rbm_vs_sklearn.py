"""scikit-learn's BernoulliRBM against ebm_jax's PCD-1 on the same binarized MNIST.

    python experiments/benchmarks/rbm_vs_sklearn.py [--data-dir ../shared/data/mnist] [--epochs 10]
        [--batch-sizes 10 100] [--repeats 3]

Both train a 784 x 500 Bernoulli RBM with PCD-1 (batch-size persistent chains), plain SGD at the
same learning rate (no momentum, no weight decay: scikit-learn has neither), W ~ N(0, 0.01^2),
zero biases, the same batch size and epochs, on the same data: the training split binarized once
(`ebm_jax.data.binarize`, seed 0), shuffled once, visited in the same order every epoch (as
scikit-learn does). ebm_jax runs its one train step (`objectives.persistent_cd` with
`gibbs.spec(1, 500)`) once per batch from Python, as `fit` does.

Timing: per batch size, `repeats` alternating rounds (scikit-learn's `fit` over all epochs, then
ebm_jax's epochs), seconds per epoch = round time / epochs; ebm_jax's compilation happens before
the first round and is not counted. Quality: the test split's average log p(v) of each final model
(of the last round), log Z by ebm_jax's AIS (100 chains, 14,501 betas, base-rate base); scikit-learn's
weights are loaded as W = components_.T, b = intercept_visible_, c = intercept_hidden_. For scale,
it also times the same PCD-1 update written out by hand as one jitted JAX function (the floor of
what XLA:CPU does with these matrix shapes).
Needs scikit-learn (a benchmark extra: `pip install scikit-learn`).
"""

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.neural_network import BernoulliRBM as SklearnRBM

from ebm_jax.data import binarize, load
from ebm_jax.energies import BernoulliRBM, rbm
from ebm_jax.eval import likelihood
from ebm_jax.samplers import gibbs
from ebm_jax.train import create_train_state, make_train_step, objectives

NUM_HIDDEN = 500


def ebm_jax_trainer(data, batch_size, learning_rate, seed=0):
    """`(init() -> state, run_epochs(state, num_epochs) -> state)`: PCD-1 with plain SGD; one
    jitted step shared by every state, so it compiles once."""
    objective = objectives.persistent_cd(gibbs.spec(1, NUM_HIDDEN), batch_size, (0.0, 1.0), alpha=0.0)
    model, optimizer = BernoulliRBM(NUM_HIDDEN, init_scale=0.01), optax.sgd(learning_rate)
    step = make_train_step(model.apply, objective, optimizer)
    batches = [data[i:i + batch_size] for i in range(0, len(data) - batch_size + 1, batch_size)]

    def init():
        return create_train_state(jax.random.key(seed), model, objective, optimizer, data[:batch_size])

    def run_epochs(state, num_epochs):
        for _ in range(num_epochs):
            for batch in batches:
                state, _ = step(state, batch)
        return jax.block_until_ready(state)

    return init, run_epochs


def hand_written_step_ms(data, batch_size, learning_rate, num_steps=500):
    """Milliseconds per step of PCD-1 written out by hand (the matrix products and draws only,
    one jitted function, batches already on the device): the floor the library's step can reach."""
    W = 0.01 * jax.random.normal(jax.random.key(0), (data.shape[1], NUM_HIDDEN))
    params = (W, jnp.zeros(data.shape[1]), jnp.zeros(NUM_HIDDEN))

    @jax.jit
    def step(params, chains, batch, key):
        W, b, c = params
        key_h, key_v = jax.random.split(key)
        h = jax.random.bernoulli(key_h, jax.nn.sigmoid(chains @ W + c)).astype(jnp.float32)
        chains = jax.random.bernoulli(key_v, jax.nn.sigmoid(h @ W.T + b)).astype(jnp.float32)
        h_data, h_model = jax.nn.sigmoid(batch @ W + c), jax.nn.sigmoid(chains @ W + c)
        grad_W = (batch.T @ h_data - chains.T @ h_model) / batch.shape[0]
        grad_b, grad_c = jnp.mean(batch - chains, 0), jnp.mean(h_data - h_model, 0)
        return (W + learning_rate * grad_W, b + learning_rate * grad_b, c + learning_rate * grad_c), chains

    batches = jnp.asarray(data[: (len(data) // batch_size) * batch_size]).reshape(-1, batch_size, data.shape[1])
    keys = jax.random.split(jax.random.key(1), num_steps)
    chains = batches[0]
    params, chains = jax.block_until_ready(step(params, chains, batches[0], keys[0]))
    start = time.perf_counter()
    for t in range(num_steps):
        params, chains = step(params, chains, batches[t % len(batches)], keys[t])
    jax.block_until_ready(params)
    return (time.perf_counter() - start) / num_steps * 1e3


def test_log_likelihood(params, test, base_logits):
    log_z, std_error = likelihood.rbm_ais_log_z(jax.random.key(1), params, 100, 14501, base_logits)
    return float(likelihood.rbm_log_likelihood(params, test, log_z)), float(std_error)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="../shared/data/mnist")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 100])
    p.add_argument("--learning-rate", type=float, default=0.05)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    dataset = load("mnist", args.data_dir)
    train = binarize(dataset.train.images, 0, 0)
    train = train[np.random.default_rng(0).permutation(len(train))]
    test = binarize(dataset.test.images, 0, 1)
    base_logits = rbm.base_rate_logits(train)
    print(f"data: {dataset.source}; {len(train)} train / {len(test)} test, binarized (seed 0)")
    print(f"machine: {platform.processor() or platform.machine()}, {jax.local_device_count()} JAX device(s), "
          f"jax {jax.__version__}; {NUM_HIDDEN} hidden, lr {args.learning_rate}, {args.epochs} epochs, PCD-1")
    rows = []
    for batch_size in args.batch_sizes:
        init, run_epochs = ebm_jax_trainer(train, batch_size, args.learning_rate)
        run_epochs(init(), 1)  # compiles the step (and warms up); not timed
        times = {"scikit-learn": [], "ebm_jax": []}
        for _ in range(args.repeats):
            sk = SklearnRBM(n_components=NUM_HIDDEN, learning_rate=args.learning_rate, batch_size=batch_size,
                            n_iter=args.epochs, random_state=0)
            start = time.perf_counter()
            sk.fit(train)
            times["scikit-learn"].append((time.perf_counter() - start) / args.epochs)
            state = init()
            start = time.perf_counter()
            state = run_epochs(state, args.epochs)
            times["ebm_jax"].append((time.perf_counter() - start) / args.epochs)
        sk_params = {"W": sk.components_.T.astype(np.float32), "b": sk.intercept_visible_.astype(np.float32),
                     "c": sk.intercept_hidden_.astype(np.float32)}
        ll = {"scikit-learn": test_log_likelihood(sk_params, test, base_logits),
              "ebm_jax": test_log_likelihood(jax.tree.map(np.asarray, state.params["energy"]), test, base_logits)}
        for name in ("scikit-learn", "ebm_jax"):
            t = np.array(times[name])
            rows.append((batch_size, name, np.median(t), t.min(), t.max(), *ll[name]))
        speedup = np.array(times["scikit-learn"]) / np.array(times["ebm_jax"])
        steps = len(train) // batch_size
        print(f"batch {batch_size}: ebm_jax / scikit-learn speed-up per round: {', '.join(f'{s:.2f}x' for s in speedup)}; "
              f"ms per step: ebm_jax {1e3 * np.median(times['ebm_jax']) / steps:.2f}, the same step by hand "
              f"{hand_written_step_ms(train, batch_size, args.learning_rate):.2f}", flush=True)
    print("\n| batch | library | s / epoch (median; min-max over rounds) | test log p(v), nats (AIS +- s.e.) |")
    print("|---|---|---|---|")
    for batch_size, name, med, lo, hi, ll_value, se in rows:
        print(f"| {batch_size} | {name} | {med:.3f} ({lo:.3f}-{hi:.3f}) | {ll_value:.2f} +- {se:.2f} |")


if __name__ == "__main__":
    main()
