"""Train one objective on one 2-D dataset and score the model against the true density.

    train_and_evaluate(config, workdir) -> metrics (also written to workdir/metrics.json)

Training runs on the library's fit loop (`ebm_jax.train.fit`): checkpoints, `--resume`, the
non-finite guard. Outputs in `workdir`: `metrics.json`, `energy_landscape.png` (contours of E
with the field -grad E and model samples on top), `landscape.png` (the model's normalised
density with its samples over it, the true density beside it), `metrics.jsonl` and
`tensorboard/` (logged metrics), `checkpoints/` and `config.json`.
Model samples come from MALA chains started from uniform noise on the box (annealed Langevin
over the sigma ladder for msdsm), as a user would sample; the "grid" samples are exact draws
from the normalised exp(-E) on the grid, which judge the density without any sampler error.
"""

import os
import time
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure

from ebm_jax import losses
from ebm_jax.data import toy2d
from ebm_jax.energies import MLPEnergy, per_example
from ebm_jax.eval import density2d, plots
from ebm_jax.experiments.cli import flatten
from ebm_jax.experiments.toy2d.config import RESUME_MAY_CHANGE, Config
from ebm_jax.samplers import annealed, langevin, mala, sample
from ebm_jax.train import create_train_state, energy_function, fit, make_train_step, objectives
from ebm_jax.train.loop import write_json


def msdsm_sigmas(config: Config) -> np.ndarray:
    return np.geomspace(config.msdsm_sigma_max, config.msdsm_sigma_min, config.msdsm_levels)


def build_objective(config: Config, train_data: np.ndarray) -> objectives.Objective:
    bounds = (-config.half_width, config.half_width)
    sampler = lambda steps: langevin.spec(steps, config.step_size, bounds=bounds)
    contrastive = dict(loss=config.contrastive_loss, alpha=config.alpha, margin=config.margin)
    name = config.objective
    if name == "cd":
        objective = objectives.replay_cd(sampler(config.mcmc_steps), bounds, reinit_prob=config.reinit_prob, **contrastive)
    elif name == "pcd":
        objective = objectives.persistent_cd(sampler(config.mcmc_steps), config.batch_size, bounds, **contrastive)
    elif name == "cdk":
        objective = objectives.cd_k(sampler(config.cdk_steps), **contrastive)
    elif name == "dsm":
        objective = objectives.dsm(config.dsm_sigma)
    elif name == "ssm":
        objective = objectives.ssm(config.ssm_projections, config.ssm_variance_reduced)
    elif name == "msdsm":
        objective = objectives.msdsm(msdsm_sigmas(config))
    else:
        if config.nce_noise == "gaussian":
            noise = losses.fitted_gaussian(train_data, config.nce_noise_scale)
        else:
            noise = losses.uniform_box(-config.half_width, config.half_width, (2,))
        objective = objectives.nce(noise, config.nce_nu)
    if config.energy_l2 > 0 or config.grad_penalty > 0:
        objective = objectives.regularised(objective, config.energy_l2, config.grad_penalty)
    return objective


def build(config: Config, objective):
    """`(model, optimizer)`: the MLP energy (noise-conditional for msdsm) and Adam with a cosine
    decay to 1 % over the steps."""
    model = MLPEnergy(tuple(config.features), noise_conditional=objective.noise_conditional)
    return model, optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.steps, alpha=0.01))


def batch_fn(config: Config, train_data: np.ndarray):
    """`t -> batch`: step t's batch, drawn with replacement from a generator seeded by (seed, t)
    (a function of the step alone, so a resumed run sees the same batches)."""
    def batch(t):
        return train_data[np.random.default_rng([config.seed, t]).integers(0, len(train_data), config.batch_size)]

    return batch


def train(config: Config, objective, train_data: np.ndarray, workdir: str, resume: bool = False,
          progress: bool = True):
    """Returns `(model, state, summary)` (`fit`'s); raises FloatingPointError on a NaN loss."""
    model, optimizer = build(config, objective)
    batches = batch_fn(config, train_data)
    state = create_train_state(jax.random.key(config.seed), model, objective, optimizer, batches(0))
    train_step = make_train_step(model.apply, objective, optimizer)
    state, summary = fit(train_step, state, batches, config.steps, workdir, log_every=config.log_every,
                         checkpoint_every=config.checkpoint_every, resume=resume, config=flatten(config),
                         resume_may_change=RESUME_MAY_CHANGE, progress=progress)
    return model, state, summary


def model_samples(rng_key, config: Config, objective, batch_energy_fn):
    """`[num_eval_samples, 2]` from the model as a user would draw them (see module docstring)."""
    key_init, key_chain = jax.random.split(rng_key)
    n, box = config.num_eval_samples, config.half_width
    starts = jax.random.uniform(key_init, (n, 2), minval=-box, maxval=box)
    if objective.noise_conditional:
        final, _ = annealed.annealed_langevin(key_chain, per_example(batch_energy_fn), starts, msdsm_sigmas(config),
                                              config.annealed_steps_per_level, config.annealed_eps)
        return final, jnp.nan
    spec = mala.spec(config.eval_steps, config.eval_step_size)
    final, _, infos = sample(key_chain, spec, per_example(batch_energy_fn), starts)
    return final.position, jnp.mean(infos.acceptance_rate)


def evaluate(config: Config, dataset: toy2d.Toy2D, objective, model, state, heldout: np.ndarray) -> Dict:
    batch_energy_fn = energy_function(model.apply, state.params, state.model_state)
    reference = jax.jit(objectives.reference_energy(objective, batch_energy_fn))
    key_samples, key_grid, key_true_a, key_true_b = jax.random.split(jax.random.key(config.seed + 1), 4)
    heldout = jnp.asarray(heldout)
    n, box = config.num_eval_samples, config.half_width
    log_z = density2d.log_normaliser(reference, box, config.grid_size)
    nll_model = float(jnp.mean(reference(heldout)) + log_z)
    nll_true = float(-jnp.mean(dataset.log_prob(heldout)))
    samples, acceptance = jax.jit(lambda k: model_samples(k, config, objective, batch_energy_fn))(key_samples)
    samples_grid = density2d.grid_samples(key_grid, reference, n, box, config.grid_size)
    true_a, true_b = dataset.sample(key_true_a, n), dataset.sample(key_true_b, n)
    h = config.mmd_bandwidth
    metrics = dict(
        dataset=config.dataset,
        objective=config.objective,
        heldout_nll_model=nll_model,
        heldout_nll_true=nll_true,
        heldout_nll_gap=nll_model - nll_true,
        log_z_grid=float(log_z),
        mmd2_samples=float(density2d.mmd2(samples, true_a, h)),
        mmd2_grid_samples=float(density2d.mmd2(samples_grid, true_a, h)),
        mmd2_true_vs_true=float(density2d.mmd2(true_b, true_a, h)),
        mmd_kernel=f"Gaussian RBF exp(-|x-y|^2 / (2 h^2)), h = {h}, unbiased, {n} vs {n} samples",
        sampler_acceptance=float(acceptance),
    )
    if "log_z" in state.params["objective"]:
        metrics["log_z_learned"] = float(state.params["objective"]["log_z"])
    if config.dataset == "eight_gaussians":
        angles = 2 * np.pi * np.arange(8) / 8
        modes = jnp.asarray(2.0 * np.stack([np.cos(angles), np.sin(angles)], -1), jnp.float32)
        shares, off = density2d.mode_coverage(samples, modes, config.mode_radius)
        metrics.update(
            mode_shares=[float(s) for s in shares],
            modes_covered=int(jnp.sum(shares >= 0.02)),
            off_mode_share=float(off),
            mode_rule=f"a mode is covered if >= 2 % of samples lie within {config.mode_radius} of it (true share 12.5 %)",
        )
    return metrics, samples, reference


def save_landscape(path: str, config: Config, dataset, reference, samples) -> None:
    n = 200
    points, _ = density2d.grid(config.half_width, n)
    model_log_p = -density2d.batched(reference, points)
    model_log_p = model_log_p - jax.nn.logsumexp(model_log_p)
    true_log_p = dataset.log_prob(points)
    true_log_p = true_log_p - jax.nn.logsumexp(true_log_p)
    extent = (-config.half_width, config.half_width, -config.half_width, config.half_width)
    fig = Figure(figsize=(9, 4.4))
    axes = fig.subplots(1, 2)
    for ax, log_p, title in ((axes[0], model_log_p, f"model: {config.objective}"), (axes[1], true_log_p, "true density")):
        ax.imshow(np.exp(np.asarray(log_p)).reshape(n, n), origin="lower", extent=extent, cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    s = np.asarray(samples)
    axes[0].scatter(s[:, 0], s[:, 1], s=1.0, c="white", alpha=0.5, linewidths=0)
    fig.suptitle(f"{config.dataset}: normalised exp(-E) with {len(s)} model samples", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def train_and_evaluate(config: Config, workdir: str, resume: bool = False, progress: bool = True) -> Dict:
    config.validate()
    dataset = toy2d.get_dataset(config.dataset)
    key_train, key_heldout = jax.random.split(jax.random.key(config.seed))
    train_data = np.asarray(dataset.sample(key_train, config.num_train))
    heldout = np.asarray(dataset.sample(key_heldout, config.num_heldout))
    objective = build_objective(config, train_data)
    model, state, summary = train(config, objective, train_data, workdir, resume, progress)
    start = time.perf_counter()
    metrics, samples, reference = evaluate(config, dataset, objective, model, state, heldout)
    save_landscape(os.path.join(workdir, "landscape.png"), config, dataset, reference, samples)
    plots.save_energy_landscape(os.path.join(workdir, "energy_landscape.png"), reference, config.half_width,
                                samples[:1000], title=f"{config.dataset}, {config.objective}: E(x), -grad E, samples")
    metrics.update(train_seconds=summary["timing"]["loop_s"], eval_seconds=time.perf_counter() - start,
                   steps=config.steps, config=flatten(config))
    write_json(os.path.join(workdir, "metrics.json"), metrics)
    return metrics
