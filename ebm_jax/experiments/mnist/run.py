"""`train_and_evaluate(config, workdir)`: the tutorial's experiment on the library's fit loop.

    build(config, steps_per_epoch, ...)  model, objective, optimizer (the tutorial's replay CD)
    _Evaluator                           the tutorial's callbacks as `fit` hooks (validation gap,
                                         buffer and generation images) and the final analysis

Writes into `workdir`: config.json, metrics.jsonl, tensorboard/, checkpoints/latest and
checkpoints/best (best = largest validation CD gap; the final tables go to TensorBoard and
metrics.jsonl as scalars at the last step, `final_scalars`), buffer.png, generation_steps.png,
samples.png, energy_hist.png, training_curves.png, generation_energy.png (each generation
chain's energy per step; split R-hat, ESS and acceptance in metrics.json) and metrics.json (the
final analysis, with the
OOD benchmark of `eval.ood`: AUROC, AUPR, FPR@95 and detection error of -E and -|grad E| for
the test split against the other dataset, noise and the tutorial's edits).
The validation CD gap is E(uniform noise) - E(test images), both means over the test split (the
tutorial's `val_contrastive_divergence` with our sign: a larger gap separates data from noise).
"""

import json
import os
from typing import Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from ebm_jax import buffers, parallel, presets
from ebm_jax import data as data_lib
from ebm_jax.energies import CourseCNN, TutorialCNN, per_example
from ebm_jax.eval import analysis, ood, plots, sample_quality
from ebm_jax.experiments.cli import apply_flat, flatten
from ebm_jax.experiments.datasets import other_dataset
from ebm_jax.experiments.mnist.config import RESUME_MAY_CHANGE, Config
from ebm_jax.samplers import adaptation, diagnostics, hmc, mala, sample, uniform_starts
from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.train import Hook, Rollback, TrainState, create_train_state, fit, make_train_step, shard_state
from ebm_jax.train.checkpoint import restore_state
from ebm_jax.train.logging import MetricWriter, read_metrics
from ebm_jax.train.loop import write_json

EXAMPLE_SHAPE = (28, 28, 1)
_TARGETS = {"mala": 0.574, "hmc": 0.8}


class Build(NamedTuple):
    model: object
    optimizer: optax.GradientTransformation
    learning_rate: object  # step -> learning rate


def build(config: Config, steps_per_epoch: int) -> Build:
    """The model and the tutorial's optimizer (clip, Adam, per-epoch decay) for `config`."""
    model = TutorialCNN(features=config.features) if config.model == "tutorial_cnn" else CourseCNN()
    optimizer = presets.tutorial_optimizer(steps_per_epoch, config.learning_rate, config.b1, config.b2,
                                           config.clip_norm, config.lr_decay_per_epoch)
    schedule = presets.tutorial_schedule(steps_per_epoch, config.learning_rate, config.lr_decay_per_epoch)
    return Build(model, optimizer, schedule)


def objective_for(config: Config, sampler: SamplerSpec):
    return presets.tutorial_objective(sampler, config.buffer_capacity, config.reinit_prob, config.alpha,
                                      config.real_noise)


def build_sampler(config: Config, rng_key=None, energy_fn=None) -> SamplerSpec:
    """The configured sampler. MALA and HMC without a step size get one from a dual-averaging
    warm-up (`samplers.adaptation.warmup`) of `batch_size` chains from uniform noise under
    `energy_fn` (the initial model), aiming at the configured acceptance."""
    s = config.sampler
    if s.name == "langevin":
        return presets.tutorial_sampler(s.num_steps, 10.0 if s.step_size is None else s.step_size,
                                        s.noise_scale, s.grad_clip, s.chain_group)
    make = ((lambda step: mala.spec(s.num_steps, step, s.chain_group)) if s.name == "mala" else
            (lambda step: hmc.spec(s.num_steps, step, s.leapfrog_steps, chain_group=s.chain_group)))
    if s.step_size is not None:
        return make(s.step_size)
    key_starts, key_warmup = jax.random.split(rng_key)
    spec = make(1e-3)
    starts = uniform_starts(key_starts, config.batch_size, EXAMPLE_SHAPE)
    states = jax.vmap(lambda x: spec.init(x, energy_fn))(starts)
    params = {k: v for k, v in spec.params.items() if k != "step_size"}
    target = s.target_acceptance or _TARGETS[s.name]
    warm = jax.jit(lambda key, states: adaptation.warmup(key, spec.kernel, states, energy_fn, s.warmup_steps,
                                                         1e-3, target, **params)[0])
    return make(float(warm(key_warmup, states)))


def train_and_evaluate(config: Config, workdir: str, resume: bool = False, progress: bool = True,
                       mesh: Optional[Mesh] = None) -> Optional[Dict]:
    """Trains on the library's loop, then analyses; returns the content of `metrics.json`.

    `mesh`: a mesh with a `data` axis (`ebm_jax.parallel.data_mesh`) to split each batch and its
    sampler chains over; None runs on one device. The command line passes one over every core.
    With several processes (`parallel.initialize`) the mesh spans all of them and each process
    feeds its rows of every batch; process 0 writes the analysis and returns it, the others
    return None after training."""
    config.validate()
    several = jax.process_count() > 1
    if several and mesh is None:
        raise ValueError("a run over several processes needs a mesh over their devices (parallel.data_mesh())")
    if mesh is not None and config.batch_size % mesh.size:
        if several:
            raise ValueError(f"--batch-size {config.batch_size} does not split over the {mesh.size} devices of "
                             "the processes")
        print(f"note: batch size {config.batch_size} does not split over {mesh.size} devices; using one")
        mesh = None
    dataset = data_lib.load(config.dataset, config.data_dir)
    train_images = data_lib.to_float_images(dataset.train.images)
    test_images = data_lib.to_float_images(dataset.test.images)
    if config.max_eval_images is not None:
        test_images = test_images[: config.max_eval_images]
    steps_per_epoch = data_lib.steps_per_epoch(len(train_images), config.batch_size)
    total_steps = config.epochs * steps_per_epoch if config.max_steps is None else min(
        config.epochs * steps_per_epoch, config.max_steps)

    model, optimizer, learning_rate = build(config, steps_per_epoch)
    root = jax.random.key(config.seed)
    key_init, key_eval = jax.random.split(root)
    key_warmup = jax.random.fold_in(root, 2)
    first = jnp.zeros((config.batch_size, *EXAMPLE_SHAPE), jnp.float32)
    # The objective's state (the replay buffer) does not depend on its sampler, whose MALA / HMC
    # step size may come from a warm-up under the initial params: built after the state.
    state = create_train_state(key_init, model, objective_for(config, presets.tutorial_sampler(1)), optimizer, first)
    sampler = build_sampler(config, key_warmup, per_example(model.apply, variables(state)))
    objective = objective_for(config, sampler)
    make_step = lambda scale=1.0: make_train_step(model.apply, objective, optimizer, mesh=mesh,
                                                  learning_rate_scale=scale)

    rows = slice(None) if mesh is None else parallel.process_rows(mesh, config.batch_size)

    def batch_fn(t):  # this process's rows of step t's batch
        epoch, index = divmod(t, steps_per_epoch)
        indices = data_lib.train_batch_indices(len(train_images), config.batch_size, config.seed, epoch)[index]
        return train_images[indices[rows]]

    other = other_dataset(config) if config.ood_benchmark else None
    evaluator = _Evaluator(model, config, sampler, key_eval, test_images, other)
    if parallel.is_primary():
        processes = f" in {jax.process_count()} processes" if several else ""
        print(f"ebm_jax MNIST experiment: data = {dataset.source}; {steps_per_epoch} steps/epoch, {total_steps} "
              f"steps; {1 if mesh is None else mesh.size} device(s){processes}; workdir = {os.path.abspath(workdir)}")
    state, summary = fit(
        make_step(), state, batch_fn, total_steps, workdir,
        hooks=[Hook(lambda state, writer: evaluator.end_of_epoch(state, writer, steps_per_epoch), steps_per_epoch)],
        log_every=config.log_every, checkpoint_every=config.checkpoint_every or steps_per_epoch,
        rollback=Rollback(make_step, config.rollback_factor, config.max_rollbacks), batch_bounds=(-1.0, 1.0),
        best_metric="cd_gap", resume=resume,
        config=dict(flatten(config), data=data_lib.fingerprint(dataset.train.images)),
        resume_may_change=RESUME_MAY_CHANGE,
        place_state=(lambda s: s) if mesh is None else (lambda s: shard_state(s, mesh)),
        place_batch=(lambda b: b) if mesh is None else (lambda b: parallel.global_batch(b, mesh)),
        extra_metrics=lambda t: {"learning_rate": float(learning_rate(t))}, progress=progress)
    if not parallel.is_primary():
        return None
    state = parallel.host_local(state)
    report = evaluator.final_report(state, train_images, workdir)
    timing = summary["timing"]
    report.update(
        data=dataset.source,
        train_steps=int(state.step),
        steps_per_epoch=steps_per_epoch,
        best_val_cd_gap=summary["best"],
        sampler={"name": config.sampler.name, **{k: v for k, v in sampler.params.items() if k != "bounds"}},
        timing={
            "train_loop_s": timing["loop_s"],
            "epoch_end_eval_and_checkpoint_s": timing["hooks_and_checkpoints_s"],
            "first_step_incl_compile_s": timing["first_step_s"],
            "seconds_per_train_step": timing["seconds_per_step"],  # without compilation and epoch ends
        },
        devices=[str(d) for d in (jax.devices()[:1] if mesh is None else mesh.devices.flat)],
        processes=jax.process_count(),
    )
    write_json(os.path.join(workdir, "metrics.json"), report)
    writer = MetricWriter(workdir)
    try:
        writer.scalars(int(state.step), final_scalars(report))
    finally:
        writer.close()
    return report


def final_scalars(report: Dict) -> Dict[str, float]:
    """The final report's tables as flat scalars for TensorBoard and `metrics.jsonl`:
    `ood/<score>/<dataset>/<metric>`, `quality/<set>/<metric>`, `chains/<diagnostic>`,
    `edits/<edit>/<statistic>` and `final/mean_energy/<set>`."""
    out = {f"final/mean_energy/{k}": v for k, v in report["mean_energy"].items()}
    for edit, values in report["edits_of_test_images"].items():
        out.update({f"edits/{edit}/{k}": v for k, v in values.items()})
    out.update({f"chains/{k}": v for k, v in report["generation_chains"].items() if isinstance(v, (int, float))})
    for score in ood.SCORES:
        for name, values in report.get("ood", {}).get(score, {}).items():
            out.update({f"ood/{score}/{name}/{k}": v for k, v in values.items()})
    for name, values in report.get("sample_quality", {}).get("scores", {}).items():
        name = name.split(" ")[0]  # "real_train_images (floor)" -> "real_train_images"
        out.update({f"quality/{name}/{k}": v for k, v in values.items() if k != "num_images"})
    return {k: float(v) for k, v in out.items() if v is not None}


def variables(state: TrainState) -> Dict:
    """The model's variables in `state` (what `model.apply` takes)."""
    return {"params": state.params["energy"], **state.model_state}


class _Evaluator:
    """The tutorial's callbacks (per-epoch validation and figures) and the final analysis."""

    def __init__(self, model, config: Config, sampler: SamplerSpec, rng_key, test_images, other=None):
        self.model, self.config, self.key, self.test_images = model, config, rng_key, test_images
        self.other = other  # (name, images, source) of the other dataset, or (name, None, why not)
        generator = sampler._replace(num_steps=config.generation_steps)

        def generate(key, model_variables, num_chains, thin):
            key_starts, key_run = jax.random.split(key)
            starts = uniform_starts(key_starts, num_chains, EXAMPLE_SHAPE)
            final, trace, infos = sample(key_run, generator, per_example(model.apply, model_variables), starts, thin=thin)
            # MALA / HMC are unbounded: show and score samples in the images' range
            clipped = None if trace is None else jnp.clip(trace.position, -1.0, 1.0)
            return jnp.clip(final.position, -1.0, 1.0), clipped, infos

        thin = config.generation_steps // config.generation_snapshots
        self.thin = thin
        self.generate_steps = jax.jit(lambda k, v: generate(k, v, config.generation_chains, thin)[1])
        # Every step of the same chains (the same key: thinning does not change the numbers).
        self.generate_every_step = jax.jit(lambda k, v: generate(k, v, config.generation_chains, 1)[1:])
        self.generate_samples = jax.jit(lambda k, v: generate(k, v, config.num_samples, None)[0])
        self.generate_quality = jax.jit(lambda k, v: generate(k, v, config.quality_samples, None)[0])
        self.snapshot_steps = [thin * (i + 1) for i in range(config.generation_snapshots)]

    def _energies(self, model_variables, images):
        return analysis.dataset_energies(self.model.apply, model_variables, images, self.config.eval_batch_size)

    def validation_gap(self, model_variables, epoch) -> Dict[str, float]:
        key = jax.random.fold_in(self.key, epoch)
        noise = np.asarray(jax.random.uniform(key, self.test_images.shape, minval=-1.0, maxval=1.0))
        e_real = self._energies(model_variables, self.test_images).mean()
        e_noise = self._energies(model_variables, noise).mean()
        return {"cd_gap": float(e_noise - e_real), "energy_real": float(e_real), "energy_noise": float(e_noise)}

    def end_of_epoch(self, state, writer, steps_per_epoch: int) -> Dict[str, float]:
        step, model_variables = int(state.step), variables(state)
        epoch = (step - 1) // steps_per_epoch
        val = self.validation_gap(model_variables, epoch)
        key_noise, key_gen = jax.random.split(jax.random.fold_in(self.key, 10_000 + epoch))
        noise = np.asarray(jax.random.uniform(key_noise, (self.config.num_noise_images, *EXAMPLE_SHAPE),
                                              minval=-1.0, maxval=1.0))
        val["energy_uniform_noise_1024"] = float(self._energies(model_variables, noise).mean())
        writer.image(step, "buffer", plots.image_grid(np.asarray(buffers.newest(state.objective_state, 32))))
        trace = np.asarray(self.generate_steps(key_gen, model_variables))
        writer.image(step, "generation_steps",
                     plots.image_grid(np.swapaxes(trace, 0, 1).reshape(-1, *EXAMPLE_SHAPE), ncol=trace.shape[0]))
        return val

    def final_report(self, state, train_images, workdir) -> Dict:
        model_variables, buffer, config = variables(state), state.objective_state, self.config
        key_gen, key_samples, key_ood = jax.random.split(jax.random.fold_in(self.key, 99_999), 3)
        every_step, infos = self.generate_every_step(key_gen, model_variables)
        every_step = np.asarray(every_step)  # [steps, chains, 28, 28, 1]
        trace = every_step[self.thin - 1:: self.thin]
        plots.save_generation_steps(os.path.join(workdir, "generation_steps.png"), trace, self.snapshot_steps)
        steps, chains = every_step.shape[:2]
        chain_energies = self._energies(model_variables, every_step.reshape(-1, *EXAMPLE_SHAPE)).reshape(steps, chains).T
        diagnostics.plot_traces(os.path.join(workdir, "generation_energy.png"), chain_energies,
                                title=f"energy of each generation chain from uniform noise ({config.sampler.name})",
                                xlabel="sampler step")
        chain_report = diagnostics.energy_chain_report(chain_energies, infos)
        samples = np.asarray(self.generate_samples(key_samples, model_variables))
        plots.save_image_grid(os.path.join(workdir, "samples.png"), samples, 8,
                              f"{len(samples)} samples, {config.generation_steps} {config.sampler.name} steps from noise")
        newest = np.asarray(buffers.newest(buffer, min(64, int(buffer.size))))
        plots.save_image_grid(os.path.join(workdir, "buffer.png"), newest, 8,
                              f"replay buffer: the {len(newest)} newest of {int(buffer.size)}")
        report = analysis.ood_analysis(self.model.apply, model_variables, key_ood, train_images, self.test_images,
                                       config.num_noise_images, config.eval_batch_size)
        noise = np.asarray(jax.random.uniform(key_ood, (len(self.test_images), *EXAMPLE_SHAPE), minval=-1.0, maxval=1.0))
        e_generated = self._energies(model_variables, samples)
        plots.save_energy_histogram(os.path.join(workdir, "energy_hist.png"), {
            "test images": self._energies(model_variables, self.test_images),
            f"generated ({config.generation_steps} steps)": e_generated,
            "uniform noise": self._energies(model_variables, noise),
        })
        report["mean_energy"]["generated_samples"] = float(e_generated.mean())
        report["validation"] = self.validation_gap(model_variables, 99_999)
        report["generation_chains"] = chain_report
        if config.ood_benchmark:
            name, images, source = self.other
            report["ood"] = ood.ood_benchmark(self.model.apply, model_variables, jax.random.fold_in(key_ood, 1),
                                              self.test_images, None if images is None else {name: images},
                                              config.eval_batch_size)
            report["ood"]["other_dataset"] = source
        if config.quality_samples:
            report["sample_quality"] = self.quality_scores(model_variables, buffer, train_images,
                                                           jax.random.fold_in(key_samples, 1))
        plots.save_training_curves(os.path.join(workdir, "training_curves.png"), read_metrics(workdir), [
            ["train/loss", "train/loss_cd", "train/loss_reg"],
            ["train/energy_real", "train/energy_fake"],
            ["val/energy_real", "val/energy_noise", "val/cd_gap"],
        ])
        return report

    def quality_scores(self, model_variables, buffer, train_images, rng_key) -> Dict:
        """FD, KID and the classifier score of generation from noise and of the replay buffer
        against the test images, with the floor (training images) and the ceiling (uniform
        noise), on the shipped classifier of the dataset (`eval.sample_quality.image_scores`)."""
        config, n = self.config, self.config.quality_samples
        key_gen, key_noise = jax.random.split(rng_key)
        generated = np.asarray(self.generate_quality(key_gen, model_variables))
        noise = np.asarray(jax.random.uniform(key_noise, (n, *EXAMPLE_SHAPE), minval=-1.0, maxval=1.0))
        newest = np.asarray(buffers.newest(buffer, min(n, int(buffer.size))))
        # A seeded random subset: the offline training split is sorted by label.
        real = train_images[np.random.default_rng(config.seed).permutation(len(train_images))[:n]]
        sets = {"real_train_images (floor)": real, "uniform_noise (ceiling)": noise,
                f"generated_{config.generation_steps}_steps_from_noise": generated, "replay_buffer_newest": newest}
        try:
            scores = sample_quality.image_scores(self.test_images, sets, config.dataset)
        except FileNotFoundError as e:
            return {"skipped": str(e)}
        return {"reference": f"{len(self.test_images)} test images", "features": f"eval.classifier ({config.dataset})",
                "scores": scores}


def restore_params(workdir: str, which: str = "best"):
    """`(model, variables)` of the energy in `workdir/checkpoints/<which>` ("best" or "latest"),
    read with the run's `config.json`; `model.apply(variables, x)` gives its energies."""
    with open(os.path.join(workdir, "config.json")) as f:
        config = apply_flat(Config(), json.load(f))
    model, optimizer, _ = build(config, 1)
    first = jnp.zeros((config.batch_size, *EXAMPLE_SHAPE), jnp.float32)
    objective = objective_for(config, presets.tutorial_sampler(1))
    template = create_train_state(jax.random.key(0), model, objective, optimizer, first)
    return model, variables(restore_state(os.path.join(workdir, "checkpoints"), which, template))
