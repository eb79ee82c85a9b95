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
weights are loaded as W = components_.T, b = intercept_visible_, c = intercept_hidden_.
Needs scikit-learn (a benchmark extra: `pip install scikit-learn`).
"""

import argparse
import platform
import time

import jax
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
        print(f"batch {batch_size}: ebm_jax / scikit-learn speed-up per round: {', '.join(f'{s:.2f}x' for s in speedup)}",
              flush=True)
    print("\n| batch | library | s / epoch (median; min-max over rounds) | test log p(v), nats (AIS +- s.e.) |")
    print("|---|---|---|---|")
    for batch_size, name, med, lo, hi, ll_value, se in rows:
        print(f"| {batch_size} | {name} | {med:.3f} ({lo:.3f}-{hi:.3f}) | {ll_value:.2f} +- {se:.2f} |")


if __name__ == "__main__":
    main()
