"""Train a Bernoulli RBM (optionally a DBN on top) on binarized MNIST, then estimate its
log-likelihood by AIS.

    train_and_evaluate(config, workdir) -> report (also written to workdir/metrics.json)

Data: the MNIST experiment's sources (`ebm_jax.data.load`), every pixel binarized stochastically
once with a fixed seed (train and test alike, `data.binarize`). Training runs on the library's
fit loop (`ebm_jax.train.fit`: progress bar, metrics.jsonl, TensorBoard, checkpoints every epoch,
`--resume`) with the one train step and an RBM objective: `cd_k` with 1 or 25 Gibbs sweeps,
`persistent_cd` (PCD-1) or `persistent_pt` (PCD-1 with replica exchange). The optimizer is SGD
(optionally with momentum) after decoupled weight decay on W, the learning rate decayed linearly
to 0. Every `log_every` steps a hook records the reconstruction error and the stochastic
pseudo-log-likelihood on fixed train and test subsets.

Outputs in `workdir`: metrics.json (AIS log Z with its standard error, the average test and train
log p(v) in nats, the AIS settings, timings), filters.png (W's first 100 columns as 28 x 28
tiles), samples_gibbs.png and samples_pt.png (p(v | h) of the last sweep of chains started from
base-rate noise), curves.png, and for `--dbn` each upper layer's run in `dbn_layer<l>/` with the
DBN's samples in dbn_samples.png.
"""

import os
import time
from typing import Dict, List, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_jax import data as data_lib
from ebm_jax.energies import BernoulliRBM, dbn, rbm
from ebm_jax.eval import likelihood, plots
from ebm_jax.experiments.cli import flatten
from ebm_jax.experiments.rbm.config import RESUME_MAY_CHANGE, Config
from ebm_jax.samplers import gibbs, sample, tempering
from ebm_jax.train import Hook, create_train_state, fit, make_train_step, objectives
from ebm_jax.train.logging import read_metrics
from ebm_jax.train.loop import write_json

BOUNDS = (0.0, 1.0)


def load_binarized(config: Config) -> Tuple[np.ndarray, np.ndarray, str]:
    """`(train [N, 784], test [M, 784], description)`: {0, 1} float32, binarized with
    `config.seed` (stream 0 for train, 1 for test)."""
    dataset = data_lib.load(config.dataset, config.data_dir)
    train = data_lib.binarize(dataset.train.images, config.seed, 0)
    test = data_lib.binarize(dataset.test.images, config.seed, 1)
    return train, test, (f"{dataset.source}; {len(train)} train / {len(test)} test images, stochastically "
                         f"binarized once (pixel = 1 with probability intensity / 255, seed {config.seed})")


def build_objective(config: Config, num_hidden: int) -> objectives.Objective:
    """The objective named by `config.objective` for an RBM with `num_hidden` hidden units."""
    if config.objective in ("cd1", "cd25"):
        return objectives.cd_k(gibbs.spec(1 if config.objective == "cd1" else 25, num_hidden), alpha=0.0)
    if config.objective == "pcd":
        return objectives.persistent_cd(gibbs.spec(1, num_hidden), config.batch_size, BOUNDS, alpha=0.0)
    betas = tempering.geometric_betas(config.pt_replicas, config.pt_min_beta)
    return objectives.persistent_pt(gibbs.spec(1, num_hidden), betas, config.batch_size, BOUNDS, alpha=0.0)


def build_optimizer(config: Config, total_steps: int) -> optax.GradientTransformation:
    """Weight decay on W (not the biases), then SGD with a linear decay to 0 (and momentum)."""
    learning_rate = optax.linear_schedule(config.learning_rate, 0.0, total_steps)
    only_w = lambda params: {"energy": {k: k == "W" for k in params["energy"]},
                             "objective": jax.tree.map(lambda _: False, params["objective"])}
    return optax.chain(optax.add_decayed_weights(config.weight_decay, mask=only_w),
                       optax.sgd(learning_rate, momentum=config.momentum or None))


def _steps(config: Config, num_examples: int) -> Tuple[int, int]:
    steps_per_epoch = data_lib.steps_per_epoch(num_examples, config.batch_size)
    total = config.epochs * steps_per_epoch
    return steps_per_epoch, total if config.max_steps is None else min(total, config.max_steps)


def _curves_hook(config: Config, train: np.ndarray, test: np.ndarray) -> Hook:
    """Reconstruction error and pseudo-log-likelihood on the first `metric_images` of each split
    (one fixed key for the pseudo-likelihood's flips, so the curves are comparable over steps)."""
    subsets = {"train": jnp.asarray(train[: config.metric_images]), "test": jnp.asarray(test[: config.metric_images])}
    key = jax.random.key(config.seed + 7)

    @jax.jit
    def metrics(params):
        out = {}
        for split, v in subsets.items():
            out[f"recon_error_{split}"] = rbm.reconstruction_error(params, v)
            out[f"pseudo_ll_{split}"] = jnp.mean(rbm.pseudo_log_likelihood(key, params, v))
        return out

    return Hook(lambda state, writer: {k: float(v) for k, v in metrics(state.params["energy"]).items()},
                config.log_every)


def train_rbm(config: Config, train: np.ndarray, workdir: str, test: np.ndarray = None, num_hidden: int = None,
              resume: bool = False, progress: bool = True) -> Tuple[Dict, Dict]:
    """Trains one RBM on binary `train [N, V]` with the library's loop; returns `(params,
    summary)`. `test` (default: `train`) feeds the curves; `num_hidden` defaults to the config's."""
    num_hidden = num_hidden or config.num_hidden
    steps_per_epoch, total_steps = _steps(config, len(train))
    objective = build_objective(config, num_hidden)
    # The learning rate decays over all epochs (`max_steps` only stops early), so a run cut short
    # and resumed follows the same schedule.
    optimizer = build_optimizer(config, config.epochs * steps_per_epoch)
    model = BernoulliRBM(num_hidden, init_scale=config.init_scale)
    state = create_train_state(jax.random.key(config.seed), model, objective, optimizer, train[: config.batch_size])
    # Visible biases at the base-rate logits (Hinton 2010, section 8).
    energy_params = dict(state.params["energy"], b=rbm.base_rate_logits(train))
    state = state._replace(params=dict(state.params, energy=energy_params))
    train_step = make_train_step(model.apply, objective, optimizer)

    def batch_fn(t):
        epoch, index = divmod(t, steps_per_epoch)
        return train[data_lib.train_batch_indices(len(train), config.batch_size, config.seed, epoch)[index]]

    state, summary = fit(train_step, state, batch_fn, total_steps, workdir,
                         hooks=[_curves_hook(config, train, train if test is None else test)],
                         log_every=config.log_every, checkpoint_every=steps_per_epoch, batch_bounds=(0.0, 1.0),
                         resume=resume,
                         config=dict(flatten(config), layer_hidden=num_hidden, layer_visible=int(train.shape[1]),
                                     data=data_lib.fingerprint(train)),
                         resume_may_change=RESUME_MAY_CHANGE, progress=progress)
    return jax.tree.map(np.asarray, state.params["energy"]), summary


def _gibbs_images(rng_key, params, starts, num_steps):
    energy_fn = lambda v, h: rbm.joint_energy(params, v, h)
    final, _, _ = sample(rng_key, gibbs.spec(num_steps, params["W"].shape[1]), energy_fn, starts)
    return rbm.visible_probs(params, final.hidden)


def _pt_images(rng_key, params, starts, num_steps, betas):
    energy_fn = lambda v, h: rbm.joint_energy(params, v, h)
    spec = tempering.spec(gibbs.spec(1, params["W"].shape[1]), betas, num_steps)
    final, _, infos = sample(rng_key, spec, energy_fn, jnp.repeat(starts[:, None], betas.shape[0], 1))
    acceptance = jnp.sum(infos.swap_acceptance) / jnp.maximum(jnp.sum(infos.swap_proposed), 1)
    return rbm.visible_probs(params, final.replicas.hidden[:, 0]), acceptance


def _as_images(probs):
    """p(v = 1) `[N, 784]` -> `[N, 28, 28, 1]` in [-1, 1] for `plots`."""
    return 2.0 * np.asarray(probs).reshape(-1, 28, 28, 1) - 1.0


def save_filters(path: str, params, count: int = 100) -> None:
    """W's first `count` columns as 28 x 28 tiles, each scaled by its largest |w|."""
    w = np.asarray(params["W"])[:, :count].T
    w = w / np.maximum(np.abs(w).max(1, keepdims=True), 1e-12)
    plots.save_image_grid(path, w.reshape(-1, 28, 28, 1), ncol=10, title="filters: columns of W (grey = 0)")


def evaluate(config: Config, params, train: np.ndarray, test: np.ndarray, workdir: str) -> Dict:
    """AIS log Z and log-likelihoods, the sample and filter figures; returns the report's part."""
    params = rbm.as_params(params)
    key_ais, key_start, key_gibbs, key_pt = jax.random.split(jax.random.key(config.seed + 1), 4)
    base_logits = rbm.base_rate_logits(train)
    start = time.perf_counter()
    result = likelihood.rbm_ais(key_ais, params, config.ais_chains, config.ais_betas, base_logits)
    log_z, std_error = float(result.log_z), float(result.std_error)
    ais_seconds = time.perf_counter() - start
    report = {
        "log_likelihood": {
            "test": float(likelihood.rbm_log_likelihood(params, test, result.log_z)),
            "train": float(likelihood.rbm_log_likelihood(params, train, result.log_z)),
            "log_z": log_z,
            "log_z_std_error": std_error,
            "unit": "nats per image, average log p(v) = mean(-F(v)) - log Z; the standard error is AIS's (of log Z)",
        },
        "ais": {
            "chains": config.ais_chains,
            "betas": config.ais_betas,
            "schedule": "Salakhutdinov & Murray (2008): steps 1e-3 on [0, 0.5], 1e-4 on [0.5, 0.9], 1e-5 on [0.9, 1] "
                        "(in proportion when betas != 14,501)",
            "base": "factorised Bernoulli with the binarized training data's pixel means (base-rate model)",
            "transition": "one block-Gibbs sweep per beta; weights on the free energies",
            "effective_sample_size": float(result.ess),
            "seconds": ais_seconds,
        },
    }
    starts = jax.random.bernoulli(key_start, jax.nn.sigmoid(base_logits), (config.num_samples, params["W"].shape[0]))
    starts = starts.astype(jnp.float32)
    gibbs_images = jax.jit(_gibbs_images, static_argnums=3)(key_gibbs, params, starts, config.sample_steps)
    betas = tempering.geometric_betas(config.pt_replicas, config.pt_min_beta)
    pt_images, swap = jax.jit(_pt_images, static_argnums=3)(key_pt, params, starts, config.sample_steps, betas)
    what = f"{config.num_samples} chains, {config.sample_steps} sweeps from base-rate noise; p(v | h) shown"
    plots.save_image_grid(os.path.join(workdir, "samples_gibbs.png"), _as_images(gibbs_images), ncol=10,
                          title=f"block Gibbs: {what}")
    plots.save_image_grid(os.path.join(workdir, "samples_pt.png"), _as_images(pt_images), ncol=10,
                          title=f"replica exchange, {config.pt_replicas} temperatures: {what}")
    report["samples"] = {"gibbs": what, "pt_swap_acceptance": float(swap)}
    save_filters(os.path.join(workdir, "filters.png"), params)
    plots.save_training_curves(os.path.join(workdir, "curves.png"), read_metrics(workdir), [
        ["val/recon_error_train", "val/recon_error_test"], ["val/pseudo_ll_train", "val/pseudo_ll_test"]])
    return report


def train_dbn(config: Config, first_layer, train: np.ndarray, workdir: str, resume: bool = False,
              progress: bool = True) -> List[Dict]:
    """Greedy layer-wise training (Hinton, Osindero & Teh 2006): layer l >= 2 is an RBM trained
    with the same settings on binary draws (one fixed seed) of p(h = 1 | .) of the layers below;
    each in `workdir/dbn_layer<l>`. Returns the DBN's layers, `first_layer` first."""
    layers = [first_layer]
    for index, num_hidden in enumerate(config.dbn[1:], start=2):
        key = jax.random.key(config.seed + 100 + index)
        below = np.asarray(dbn.up(layers, jnp.asarray(train), key))
        params, _ = train_rbm(config, below, os.path.join(workdir, f"dbn_layer{index}"), num_hidden=num_hidden,
                              resume=resume, progress=progress)
        layers.append(params)
    return layers


def train_and_evaluate(config: Config, workdir: str, resume: bool = False, progress: bool = True) -> Dict:
    config.validate()
    train, test, source = load_binarized(config)
    steps_per_epoch, total_steps = _steps(config, len(train))
    print(f"ebm_jax RBM experiment: data = {source}; {config.objective}, {config.num_hidden} hidden units, "
          f"{steps_per_epoch} steps/epoch, {total_steps} steps; workdir = {os.path.abspath(workdir)}")
    params, summary = train_rbm(config, train, workdir, test, resume=resume, progress=progress)
    report = {"data": source, "objective": config.objective, "num_hidden": config.num_hidden,
              "train_steps": summary["steps"], "steps_per_epoch": steps_per_epoch}
    report.update(evaluate(config, params, train, test, workdir))
    if config.dbn:
        layers = train_dbn(config, params, train, workdir, resume, progress)
        samples = dbn.sample(jax.random.key(config.seed + 3), layers, config.num_samples, config.sample_steps)
        plots.save_image_grid(os.path.join(workdir, "dbn_samples.png"), _as_images(samples), ncol=10,
                              title=f"DBN {'-'.join(map(str, config.dbn))}: Gibbs in the top RBM, then one top-down pass")
        report["dbn"] = {"layers": list(config.dbn), "samples": "dbn_samples.png"}
    timing = summary["timing"]
    report["timing"] = {"train_loop_s": timing["loop_s"], "seconds_per_train_step": timing["seconds_per_step"],
                        "first_step_incl_compile_s": timing["first_step_s"], "ais_s": report["ais"]["seconds"]}
    report["note"] = ("Salakhutdinov & Murray (2008) report -86.34 nats for a CD25 RBM with 500 hidden units on the full "
                      "60,000-image MNIST training set; runs on the 5,000-image offline subset are not comparable to it.")
    report["config"] = flatten(config)
    write_json(os.path.join(workdir, "metrics.json"), report)
    return report
