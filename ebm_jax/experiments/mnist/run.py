"""`train_and_evaluate(config, workdir)`: the tutorial's experiment, end to end.

Writes into `workdir`:
  config.json, metrics.jsonl (every logged step), tensorboard/ (scalars and image grids),
  checkpoints/latest and checkpoints/best (orbax; best = largest validation CD gap),
  buffer.png, generation_steps.png, samples.png, energy_hist.png, training_curves.png,
  metrics.json (the final analysis).

The validation CD gap is E(uniform noise) - E(test images), both means over the test split
(the tutorial's `val_contrastive_divergence` with our sign: a larger gap separates data from
noise better).
"""

import dataclasses
import json
import os
import time
from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from ebm_jax import buffers
from ebm_jax import data as data_lib
from ebm_jax.energies import CourseCNN, TutorialCNN, per_example
from ebm_jax.eval import analysis, plots
from ebm_jax.experiments.mnist.config import Config
from ebm_jax.samplers import hmc, langevin, mala
from ebm_jax.samplers.generate import generate_from_noise
from ebm_jax.train import create_train_state, make_train_step, shard_state, tutorial_optimizer, tutorial_schedule
from ebm_jax.train.checkpoint import Checkpointer
from ebm_jax.train.logging import MetricWriter, read_metrics

EXAMPLE_SHAPE = (28, 28, 1)
# Settings that must not change between a run and its resumption.
_RESUME_KEYS = ("dataset", "model", "features", "batch_size", "learning_rate", "b1", "b2",
                "clip_norm", "lr_decay_per_epoch", "alpha", "real_noise", "sampler", "mcmc_steps",
                "step_size", "noise_scale", "grad_clip", "mala_step_size", "hmc_step_size",
                "hmc_leapfrog_steps", "buffer_capacity", "reinit_prob", "seed")


def build_model(config: Config):
    if config.model == "tutorial_cnn":
        return TutorialCNN(features=config.features)
    return CourseCNN()


def sampler_for(config: Config):
    """`(init, kernel, params, draw)` of the configured negative sampler; `draw` is None where the
    kernel takes a key, else `kernel` is the move taking `draw`'s output (`ChainSampler.draw`)."""
    if config.sampler == "mala":
        return mala.init, mala.build_kernel(), dict(step_size=config.mala_step_size), None
    if config.sampler == "hmc":
        return hmc.init, hmc.build_kernel(), dict(step_size=config.hmc_step_size,
                                                  num_integration_steps=config.hmc_leapfrog_steps), None
    params = dict(step_size=config.step_size, noise_scale=config.noise_scale,
                  grad_clip=config.grad_clip, bounds=(-1.0, 1.0))
    return langevin.init, langevin.build_move("noise_first"), params, langevin.draw


def train_and_evaluate(config: Config, workdir: str, resume: bool = False, progress: bool = True,
                       mesh: Optional[Mesh] = None) -> Dict:
    """Trains, logs, checkpoints and analyses; returns the content of `metrics.json`.

    `mesh`: a mesh with a `data` axis (`ebm_jax.parallel.data_mesh`) to split each batch and its
    sampler chains over; None runs on one device. The command line passes one over every core."""
    config.validate()
    if mesh is not None and config.batch_size % mesh.size:
        print(f"note: batch size {config.batch_size} does not split over {mesh.size} devices; using one")
        mesh = None
    dataset = data_lib.load(config.dataset, config.data_dir)
    train_images = data_lib.to_float_images(dataset.train.images)
    test_images = data_lib.to_float_images(dataset.test.images)
    if config.max_eval_images is not None:
        test_images = test_images[: config.max_eval_images]
    steps_per_epoch = data_lib.steps_per_epoch(len(train_images), config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    os.makedirs(workdir, exist_ok=True)
    model = build_model(config)
    optimizer = tutorial_optimizer(steps_per_epoch, config.learning_rate, config.b1, config.b2,
                                   config.clip_norm, config.lr_decay_per_epoch)
    learning_rate = tutorial_schedule(steps_per_epoch, config.learning_rate, config.lr_decay_per_epoch)
    sampler_init, sampler_kernel, params, sampler_draw = sampler_for(config)
    train_step = make_train_step(
        model.apply, optimizer, sampler_init=sampler_init, sampler_kernel=sampler_kernel,
        sampler_params=params, sampler_draw=sampler_draw, num_mcmc_steps=config.mcmc_steps,
        alpha=config.alpha, real_noise=config.real_noise, reinit_prob=config.reinit_prob, mesh=mesh)
    root_key = jax.random.key(config.seed)
    key_init, key_eval = jax.random.split(root_key)
    state = create_train_state(key_init, model, optimizer, EXAMPLE_SHAPE, config.batch_size,
                               config.buffer_capacity)
    checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"))
    state, best_gap = _restore_or_start(checkpoints, state, config, workdir, resume)
    if mesh is not None:
        state = shard_state(state, mesh)
    _write_json(os.path.join(workdir, "config.json"), dataclasses.asdict(config))

    evaluator = _Evaluator(model, config, key_eval, test_images)
    writer = MetricWriter(workdir)
    print(f"ebm_jax MNIST experiment: data = {dataset.source}; {steps_per_epoch} steps/epoch, "
          f"training steps {int(state.step)} -> {total_steps}; "
          f"{1 if mesh is None else mesh.size} device(s); workdir = {os.path.abspath(workdir)}")
    start_step = int(state.step)
    timing = {"first_step_s": None, "eval_s": 0.0}
    loop_start = time.perf_counter()
    diverged = False
    bar = tqdm(total=total_steps, initial=start_step, disable=not progress, desc="train", unit="step")
    try:
        indices = None
        for step in range(start_step, total_steps):
            epoch, index = divmod(step, steps_per_epoch)
            if indices is None or index == 0:
                indices = data_lib.train_batch_indices(len(train_images), config.batch_size, config.seed, epoch)
            state, metrics = train_step(state, jnp.asarray(train_images[indices[index]]))
            if step == start_step:  # includes compilation
                jax.block_until_ready(metrics)
                timing["first_step_s"] = time.perf_counter() - loop_start
            last_of_epoch = index == steps_per_epoch - 1 or step + 1 == total_steps
            if (step + 1) % config.log_every == 0 or last_of_epoch:
                metrics = {k: float(v) for k, v in metrics.items()}  # host sync, outside the step
                if not np.isfinite(metrics["loss"]):
                    diverged = True
                    raise FloatingPointError(
                        f"the loss became {metrics['loss']} at step {step + 1}; nothing was saved after "
                        "it, so --resume restarts from the last epoch's checkpoint (consider a smaller "
                        "--step-size or learning rate)")
                writer.scalars(step + 1, dict(metrics, learning_rate=float(learning_rate(step))), "train/")
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", E_real=f"{metrics['energy_real']:.3f}",
                                E_fake=f"{metrics['energy_fake']:.3f}")
            bar.update(1)
            if last_of_epoch:
                tic = time.perf_counter()
                gap = evaluator.end_of_epoch(state, writer, epoch)
                meta = {"val_cd_gap": gap, "epoch": epoch, "best_val_cd_gap": max(best_gap, gap)}
                checkpoints.save("latest", state, meta)
                if gap > best_gap:
                    best_gap = gap
                    checkpoints.save("best", state, meta)
                timing["eval_s"] += time.perf_counter() - tic
        jax.block_until_ready(state)
    finally:
        bar.close()
        if not diverged and _usable(state) and int(state.step) > start_step:
            checkpoints.save("latest", state, {"best_val_cd_gap": float(best_gap), "interrupted": True})
        writer.close()
        checkpoints.close()
    loop_s = time.perf_counter() - loop_start
    steps_done = int(state.step) - start_step
    train_s = loop_s - timing["eval_s"]
    report = evaluator.final_report(state, train_images, workdir)
    report.update(
        data=dataset.source,
        train_steps=int(state.step),
        steps_per_epoch=steps_per_epoch,
        best_val_cd_gap=float(best_gap),
        timing={
            "train_loop_s": loop_s,
            "epoch_end_eval_and_checkpoint_s": timing["eval_s"],
            "first_step_incl_compile_s": timing["first_step_s"],
            # later steps only: excludes compilation and the epoch-end evaluation
            "seconds_per_train_step": (train_s - timing["first_step_s"]) / (steps_done - 1) if steps_done > 1 else None,
        },
        devices=[str(d) for d in (jax.devices()[:1] if mesh is None else mesh.devices.flat)],
    )
    _write_json(os.path.join(workdir, "metrics.json"), report)
    return report


class _Evaluator:
    """Per-epoch validation and figures, and the final analysis; jitted pieces compiled once."""

    def __init__(self, model, config: Config, rng_key, test_images):
        self.model, self.config, self.key, self.test_images = model, config, rng_key, test_images
        sampler_init, kernel, params, draw = sampler_for(config)

        def generate(key, model_params, num_chains, thin):
            energy_fn = per_example(model.apply, model_params)
            samples, trace = generate_from_noise(key, energy_fn, sampler_init, kernel, params, EXAMPLE_SHAPE,
                                                 num_chains, config.generation_steps, thin,
                                                 sampler_draw=draw)
            clamp = lambda x: None if x is None else jnp.clip(x, -1.0, 1.0)  # MALA / HMC are unbounded
            return clamp(samples), clamp(trace)

        thin = config.generation_steps // config.generation_snapshots
        self.generate_steps = jax.jit(lambda k, p: generate(k, p, config.generation_chains, thin))
        self.generate_samples = jax.jit(lambda k, p: generate(k, p, config.num_samples, None)[0])
        self.snapshot_steps = [thin * (i + 1) for i in range(config.generation_snapshots)]

    def _energies(self, params, images):
        return analysis.dataset_energies(self.model.apply, params, images, self.config.eval_batch_size)

    def validation_gap(self, params, epoch) -> Dict[str, float]:
        key = jax.random.fold_in(self.key, epoch)
        noise = np.asarray(jax.random.uniform(key, self.test_images.shape, minval=-1.0, maxval=1.0))
        e_real = self._energies(params, self.test_images).mean()
        e_noise = self._energies(params, noise).mean()
        return {"cd_gap": float(e_noise - e_real), "energy_real": float(e_real), "energy_noise": float(e_noise)}

    def end_of_epoch(self, state, writer: MetricWriter, epoch: int) -> float:
        step = int(state.step)
        val = self.validation_gap(state.params, epoch)
        key_noise, key_gen = jax.random.split(jax.random.fold_in(self.key, 10_000 + epoch))
        noise = np.asarray(jax.random.uniform(key_noise, (self.config.num_noise_images, *EXAMPLE_SHAPE), minval=-1.0, maxval=1.0))
        val["energy_uniform_noise_1024"] = float(self._energies(state.params, noise).mean())
        writer.scalars(step, val, "val/")
        buffer_view = np.asarray(buffers.newest(state.buffer, 32))
        _, trace = self.generate_steps(key_gen, state.params)
        writer.image(step, "buffer", plots.image_grid(buffer_view))
        trace = np.asarray(trace)
        writer.image(step, "generation_steps", plots.image_grid(np.swapaxes(trace, 0, 1).reshape(-1, *EXAMPLE_SHAPE), ncol=trace.shape[0]))
        return val["cd_gap"]

    def final_report(self, state, train_images, workdir) -> Dict:
        params = state.params
        key_gen, key_samples, key_ood = jax.random.split(jax.random.fold_in(self.key, 99_999), 3)
        _, trace = self.generate_steps(key_gen, params)
        plots.save_generation_steps(os.path.join(workdir, "generation_steps.png"), np.asarray(trace), self.snapshot_steps)
        samples = np.asarray(self.generate_samples(key_samples, params))
        plots.save_image_grid(os.path.join(workdir, "samples.png"), samples, 8,
                              f"{len(samples)} samples, {self.config.generation_steps} {self.config.sampler} steps from noise")
        newest = np.asarray(buffers.newest(state.buffer, min(64, int(state.buffer.size))))
        plots.save_image_grid(os.path.join(workdir, "buffer.png"), newest, 8,
                              f"replay buffer: the {len(newest)} newest of {int(state.buffer.size)}")
        report = analysis.ood_analysis(self.model.apply, params, key_ood, train_images, self.test_images,
                                       self.config.num_noise_images, self.config.eval_batch_size)
        noise = np.asarray(jax.random.uniform(key_ood, (len(self.test_images), *EXAMPLE_SHAPE), minval=-1.0, maxval=1.0))
        e_generated = self._energies(params, samples)
        plots.save_energy_histogram(os.path.join(workdir, "energy_hist.png"), {
            "test images": self._energies(params, self.test_images),
            f"generated ({self.config.generation_steps} steps)": e_generated,
            "uniform noise": self._energies(params, noise),
        })
        report["mean_energy"]["generated_samples"] = float(e_generated.mean())
        report["validation"] = self.validation_gap(params, 99_999)
        records = read_metrics(workdir)
        plots.save_training_curves(os.path.join(workdir, "training_curves.png"), records, [
            ["train/loss", "train/loss_cd", "train/loss_reg"],
            ["train/energy_real", "train/energy_fake"],
            ["val/energy_real", "val/energy_noise", "val/cd_gap"],
        ])
        return report


def _restore_or_start(checkpoints, state, config, workdir, resume):
    restored = checkpoints.restore("latest", state)
    if restored is None:
        if resume:
            print(f"--resume: no checkpoint in {workdir}/checkpoints yet; starting from scratch")
        return state, -np.inf
    if not resume:
        raise FileExistsError(
            f"{workdir} already holds a run (checkpoint at step {checkpoints.latest_step('latest')}); "
            "pass --resume to continue it or choose another --workdir")
    saved_path = os.path.join(workdir, "config.json")
    if os.path.exists(saved_path):
        with open(saved_path) as f:
            saved = json.load(f)
        changed = [k for k in _RESUME_KEYS if k in saved and saved[k] != getattr(config, k)]
        if changed:
            raise ValueError(f"--resume with different settings than the saved run: {changed}")
    restored_state, meta = restored
    best = meta.get("best_val_cd_gap", -np.inf)
    return restored_state, (-np.inf if best is None else float(best))


def _usable(state) -> bool:
    """False if the state's buffers were donated to a step that did not finish."""
    return not any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree.leaves(state))


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


def restore_params(workdir: str, which: str = "best"):
    """The energy's params from `workdir/checkpoints/<which>` ("best" or "latest"), with the
    model they belong to: `(model, params)`. Reads the run's `config.json`."""
    with open(os.path.join(workdir, "config.json")) as f:
        saved = json.load(f)
    config = Config(**{k: v for k, v in saved.items() if k in Config.__dataclass_fields__})
    model = build_model(config)
    optimizer = tutorial_optimizer(1)
    template = create_train_state(jax.random.key(0), model, optimizer, EXAMPLE_SHAPE,
                                  config.batch_size, config.buffer_capacity)
    checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        restored = checkpoints.restore(which, template)
    finally:
        checkpoints.close()
    if restored is None:
        raise FileNotFoundError(f"no {which!r} checkpoint in {workdir}/checkpoints")
    return model, restored[0].params
