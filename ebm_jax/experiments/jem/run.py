"""`train_and_evaluate(config, workdir)`: JEM against the same network trained with
cross-entropy alone, on MNIST or Fashion-MNIST.

    build_model(config)                 ClassifierEnergy(the backbone with 10 outputs)
    build_objective(config, name)       objectives.jem: cross-entropy + px_weight * replay CD
                                        (+ pxy_weight * class-conditional CD); the baseline: CE
    train(config, name, ...)            the library's fit loop (progress, metrics.jsonl,
                                        TensorBoard, checkpoints every epoch, --resume), test
                                        accuracy after every epoch (best = highest)
    evaluate(...)                       accuracy, ECE (15 bins) and the reliability diagram, the OOD
                                        benchmark with -E(x) = log p(x) + log Z, max_y p(y | x) and
                                        -||grad_x E(x)||, class-conditional samples from uniform
                                        noise (SGLD on E(x, y)), the fixed classifier's accuracy
                                        on them and their sample-quality scores
    steered_generation(...)             OR / NOT / AND compositions, inpainting (upper or left half
                                        observed) and denoising (sigma 0.3), each with its number

Outputs in `workdir`: `jem/` and `cross_entropy/` (each a fit workdir: checkpoints, metrics.jsonl,
tensorboard/, `samples.png`: one row per class, `compositions.png`, `inpainting.png`,
`denoising.png`: steered generation, JEM only), `reliability.png` (both models),
`metrics.json` (both reports and the side-by-side table) and `config.json`.
"""

import json
import os
import time
from typing import Callable, Dict

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_jax import compose, generation
from ebm_jax import data as data_lib
from ebm_jax.energies import ClassifierEnergy, ResNetEnergy, TutorialCNN, per_example
from ebm_jax.eval import calibration, classifier, ood, plots, sample_quality
from ebm_jax.experiments.cli import apply_flat, flatten
from ebm_jax.experiments.datasets import other_dataset
from ebm_jax.experiments.jem.config import RESUME_MAY_CHANGE, Config
from ebm_jax.samplers import langevin, sample, uniform_starts
from ebm_jax.train import Hook, Rollback, create_train_state, fit, make_train_step, objectives
from ebm_jax.train.checkpoint import restore_state
from ebm_jax.train.logging import MetricWriter
from ebm_jax.train.loop import write_json

BOUNDS = (-1.0, 1.0)
NUM_CLASSES = 10
SHAPE = (28, 28, 1)
MODELS = ("jem", "cross_entropy")


def build_model(config: Config) -> ClassifierEnergy:
    if config.backbone == "tutorial_cnn":
        backbone = TutorialCNN(features=config.features, outputs=NUM_CLASSES)
    else:
        c = config.features
        backbone = ResNetEnergy(widths=(c, 2 * c, 4 * c), groups=min(8, c), spectral_norm=False, outputs=NUM_CLASSES)
    return ClassifierEnergy(backbone)


def build_sampler(config: Config, num_steps: int):
    """JEM's SGLD: x <- clip(x - step * grad E(x) + noise * z, -1, 1)."""
    return langevin.spec(num_steps, config.sgld_step_size, config.sgld_noise, bounds=BOUNDS)


def build_objective(config: Config, name: str) -> objectives.Objective:
    """JEM's objective for "jem"; cross-entropy alone (no p(x) or p(x | y) term) for "cross_entropy"."""
    jem = name == "jem"
    return objectives.jem(build_sampler(config, config.sgld_steps), BOUNDS, config.buffer_capacity,
                          config.reinit_prob, config.px_weight if jem else 0.0, config.alpha, config.real_noise,
                          config.pxy_weight if jem else 0.0, NUM_CLASSES)


def build_optimizer(config: Config) -> optax.GradientTransformation:
    """Global-norm clip, then Adam whose learning rate rises linearly over the warm-up."""
    learning_rate = (optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps)
                     if config.warmup_steps else config.learning_rate)
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), optax.adam(learning_rate))


def variables_of(state) -> Dict:
    return {"params": state.params["energy"], **state.model_state}


def probs_fn(model) -> Callable:
    """`(variables, x [B, ...]) -> p(y | x) [B, 10]`, jitted: build it once and reuse it."""
    return jax.jit(lambda variables, x: model.apply(variables, x, method="probs"))


def predict(probs, variables, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """p(y | x) `[N, 10]` over `images`, in fixed-size batches, with `probs = probs_fn(model)`."""
    return np.concatenate([np.asarray(probs(variables, jnp.asarray(b)))[valid]
                           for b, valid in data_lib.padded_batches(images, batch_size)])


def train(config: Config, name: str, train_x, train_y, test_x, test_y, workdir: str, resume: bool = False,
          progress: bool = True):
    """Trains `name` ("jem", or "cross_entropy": no generative term) on the fit loop; `(model,
    variables, summary)` of the final state."""
    model, objective, optimizer = build_model(config), build_objective(config, name), build_optimizer(config)
    steps_per_epoch = data_lib.steps_per_epoch(len(train_x), config.batch_size)
    total = config.epochs * steps_per_epoch if config.max_steps is None else min(config.epochs * steps_per_epoch,
                                                                                   config.max_steps)
    first = {"x": train_x[: config.batch_size], "y": train_y[: config.batch_size]}
    state = create_train_state(jax.random.key(config.seed), model, objective, optimizer, first)
    make_step = lambda scale=1.0: make_train_step(model.apply, objective, optimizer, learning_rate_scale=scale)
    probs = probs_fn(model)  # compiled once for every epoch's accuracy

    def batch_fn(t):
        epoch, index = divmod(t, steps_per_epoch)
        rows = data_lib.train_batch_indices(len(train_x), config.batch_size, config.seed, epoch)[index]
        return {"x": train_x[rows], "y": train_y[rows]}

    def accuracy_hook(state, writer):
        predicted = predict(probs, variables_of(state), test_x, config.eval_batch_size)
        return {"accuracy": float(np.mean(predicted.argmax(-1) == test_y))}

    state, summary = fit(make_step(), state, batch_fn, total, workdir,
                         hooks=[Hook(accuracy_hook, steps_per_epoch)], log_every=config.log_every,
                         checkpoint_every=config.checkpoint_every or steps_per_epoch,
                         rollback=Rollback(make_step, config.rollback_factor, config.max_rollbacks),
                         batch_bounds=BOUNDS,
                         best_metric="accuracy", resume=resume,
                         config=dict(flatten(config), model=name, data=data_lib.fingerprint(train_x, train_y)),
                         resume_may_change=RESUME_MAY_CHANGE,
                         progress=progress)
    return model, variables_of(state), summary


def class_conditional_samples(rng_key, model, variables, config: Config) -> np.ndarray:
    """`[10, n, 28, 28, 1]`: `n = samples_per_class` chains per class y, each `sample_steps` SGLD
    steps on E(x, y) from uniform noise (`compose.condition`; one vmap over the classes)."""
    energy_fn = per_example(model.apply, variables)  # (x, y) -> E(x, y)
    spec = build_sampler(config, config.sample_steps)
    n = config.samples_per_class
    key_starts, key_run = jax.random.split(rng_key)
    starts = uniform_starts(key_starts, NUM_CLASSES * n, SHAPE).reshape(NUM_CLASSES, n, *SHAPE)

    @jax.jit
    def run(keys, starts):
        def one_class(key, y, starts):
            return sample(key, spec, compose.condition(energy_fn, y), starts)[0].position

        return jax.vmap(one_class)(keys, jnp.arange(NUM_CLASSES), starts)

    return np.asarray(run(jax.random.split(key_run, NUM_CLASSES), starts))


# The compositions shown: either of two classes, one class AND the unconditional model; NOT
# excludes the class the unconditional samples hold most of (so there is something to remove).
OR_CLASSES, AND_CLASS = (3, 8), 5


def steered_generation(rng_key, model, variables, config: Config, test_x, test_y, train_x, workdir: str) -> Dict:
    """Compositions, inpainting and denoising with the model's energies (`ebm_jax.generation`),
    each with a number that says whether it worked (the fixed classifier of `eval.classifier`
    judges classes; the model's own argmax p(y | x) is reported beside it); figures
    `compositions.png`, `inpainting.png`, `denoising.png` in `workdir`. NOT y is `compose.difference(E, E(., y))`, the density p(x, label != y) of the joint model."""
    energy_fn = per_example(model.apply, variables)           # (x) -> E(x); (x, y) -> E(x, y)
    of_class = lambda y: compose.condition(energy_fn, y)
    spec = build_sampler(config, config.sample_steps)
    n = config.steer_images
    predict_fixed = lambda images: classifier.features(np.asarray(images), config.dataset)[1].argmax(-1)
    keys = jax.random.split(rng_key, 6)  # 0-2: the compositions, 3: inpainting, 4: denoising, 5: unconditional
    generate = lambda key, composed: np.asarray(jax.jit(lambda k: generation.from_noise(k, spec, composed, n, SHAPE))(key))

    probs = probs_fn(model)

    def shares_of(classes):
        return {str(c): float(np.mean(classes == c)) for c in range(NUM_CLASSES)}

    def class_shares(samples):
        """The fixed classifier's class shares, and the model's own (argmax p(y | x))."""
        own = predict(probs, variables, samples, config.eval_batch_size).argmax(-1)
        return shares_of(predict_fixed(samples)), {"model_class_shares": shares_of(own)}

    # The unconditional model first: the class shares the compositions change.
    unconditional = generate(keys[5], energy_fn)
    shares, own = class_shares(unconditional)
    report = {"unconditional": dict(own, class_shares=shares, samples=n)}
    not_class = max(range(NUM_CLASSES), key=lambda c: shares[str(c)])
    compositions = {
        f"or_{OR_CLASSES[0]}_{OR_CLASSES[1]}": (keys[0], compose.disjunction(of_class(OR_CLASSES[0]),
                                                                            of_class(OR_CLASSES[1]))),
        f"not_{not_class}": (keys[1], compose.difference(energy_fn, of_class(not_class))),
        f"and_{AND_CLASS}_unconditional": (keys[2], compose.conjunction(of_class(AND_CLASS), energy_fn)),
    }
    panels = {}
    for label, (key, composed) in compositions.items():
        samples = generate(key, composed)
        shares, own = class_shares(samples)
        if label.startswith("or"):
            value = {"share_in_the_two_classes": sum(shares[str(c)] for c in OR_CLASSES)}
        elif label.startswith("not"):
            value = {"excluded_class": not_class, "share_of_the_excluded_class": shares[str(not_class)],
                     "share_of_that_class_unconditional": report["unconditional"]["class_shares"][str(not_class)]}
        else:
            value = {"share_of_the_class": shares[str(AND_CLASS)]}
        report[label] = dict(value, **own, class_shares=shares, samples=n)
        panels[label] = samples[:10]
    plots.save_image_grid(os.path.join(workdir, "compositions.png"), np.concatenate(list(panels.values())), 10,
                          " / ".join(panels) + " (one row each)")

    digits, labels = test_x[:n], test_y[:n]
    mean_image = train_x.mean(0)
    report["inpainting"] = {"images": len(digits)}
    figure = [digits[:10]]
    for half, mask in (("upper", _half_mask("upper")), ("left", _half_mask("left"))):
        completed = np.asarray(jax.jit(lambda k, x: generation.inpaint(k, spec, energy_fn, x, mask))(keys[3], digits))
        filled = np.where(mask, digits, mean_image)
        hidden = ~mask
        mse = lambda images: float(np.mean(np.square(images - digits)[:, hidden]))
        report["inpainting"][f"{half}_half_observed"] = {
            "mse_hidden_half": mse(completed), "mse_hidden_half_mean_image_fill": mse(filled),
            "fixed_classifier_accuracy": float(np.mean(predict_fixed(completed) == labels)),
            "fixed_classifier_accuracy_mean_image_fill": float(np.mean(predict_fixed(filled) == labels))}
        figure += [np.where(mask, digits[:10], -1.0), completed[:10]]
    plots.save_image_grid(os.path.join(workdir, "inpainting.png"), np.concatenate(figure), 10,
                          "test digits; upper half observed, completed; left half observed, completed")

    noisy = np.clip(digits + 0.3 * np.asarray(jax.random.normal(keys[4], digits.shape)), -1.0, 1.0)
    cleaned = np.asarray(jax.jit(lambda x: generation.denoise(energy_fn, x, config.denoise_steps,
                                                              config.denoise_step_size))(noisy))
    report["denoising"] = {"images": len(digits), "sigma": 0.3, "steps": config.denoise_steps,
                           "step_size": config.denoise_step_size,
                           "psnr_noisy_db": float(np.mean(generation.psnr(digits, noisy))),
                           "psnr_denoised_db": float(np.mean(generation.psnr(digits, cleaned)))}
    plots.save_image_grid(os.path.join(workdir, "denoising.png"), np.concatenate([digits[:10], noisy[:10], cleaned[:10]]),
                          10, f"test digits; with noise sigma 0.3; after {config.denoise_steps} gradient steps on E")
    return report


def _half_mask(half: str) -> np.ndarray:
    """`[28, 28, 1]` bool, True on the observed half ("upper" rows or "left" columns)."""
    mask = np.zeros(SHAPE, bool)
    if half == "upper":
        mask[: SHAPE[0] // 2] = True
    else:
        mask[:, : SHAPE[1] // 2] = True
    return mask


def evaluate(model, variables, config: Config, test_x, test_y, train_x, other, workdir: str, name: str) -> Dict:
    """The report of one model (module docstring); writes `<workdir>/<name>/samples.png`."""
    start = time.perf_counter()
    probs = predict(probs_fn(model), variables, test_x, config.eval_batch_size)
    report = {"test_accuracy": float(np.mean(probs.argmax(-1) == test_y)),
              "ece_15_bins": calibration.expected_calibration_error(probs, test_y, 15),
              "test_images": len(test_x)}
    key = jax.random.key(config.seed + 1)
    key_ood, key_samples = jax.random.split(key)
    other_name, other_images, source = other
    report["ood"] = ood.ood_benchmark(model.apply, variables, key_ood, test_x,
                                      None if other_images is None else {other_name: other_images},
                                      config.eval_batch_size, scores=ood.CLASSIFIER_SCORES)
    report["ood"]["other_dataset"] = source
    samples = class_conditional_samples(key_samples, model, variables, config)
    flat = samples.reshape(-1, *SHAPE)
    labels = np.repeat(np.arange(NUM_CLASSES), config.samples_per_class)
    plots.save_image_grid(os.path.join(workdir, name, "samples.png"), flat, config.samples_per_class,
                          f"{name}: {config.sample_steps} SGLD steps on E(x, y) from noise, one row per class y")
    report["class_conditional_samples"] = {"per_class": config.samples_per_class, "sgld_steps": config.sample_steps}
    try:
        _, fixed_probs = classifier.features(flat, config.dataset)
        report["class_conditional_samples"]["fixed_classifier_accuracy"] = float(np.mean(fixed_probs.argmax(-1) == labels))
        floor = train_x[np.random.default_rng(config.seed).permutation(len(train_x))[: len(flat)]]
        ceiling = np.asarray(uniform_starts(jax.random.fold_in(key_samples, 1), len(flat), SHAPE))
        report["class_conditional_samples"]["quality"] = sample_quality.image_scores(
            test_x, {"class_conditional_samples": flat, "real_train_images (floor)": floor,
                     "uniform_noise (ceiling)": ceiling}, config.dataset)
    except FileNotFoundError as e:  # no shipped classifier for this dataset
        report["class_conditional_samples"]["quality"] = {"skipped": str(e)}
    if name == "jem" and os.path.exists(classifier.weights_path(config.dataset)):
        report["steered_generation"] = steered_generation(jax.random.key(config.seed + 2), model, variables, config,
                                                          test_x, test_y, train_x, os.path.join(workdir, name))
    report["reliability"] = {k: v.tolist() for k, v in calibration.reliability(probs, test_y, 15).items()}
    report["eval_seconds"] = time.perf_counter() - start
    return report


def side_by_side(reports: Dict[str, Dict]) -> Dict[str, Dict[str, float]]:
    """`{row: {model: value}}`: accuracy, ECE, OOD AUROC / FPR@95 per score and set, and the fixed
    classifier's accuracy on the class-conditional samples."""
    rows: Dict[str, Dict[str, float]] = {}
    for name, r in reports.items():
        rows.setdefault("test_accuracy", {})[name] = r["test_accuracy"]
        rows.setdefault("ece_15_bins", {})[name] = r["ece_15_bins"]
        for score in ood.CLASSIFIER_SCORES:
            for other, values in r["ood"].get(score, {}).items():
                rows.setdefault(f"auroc/{score}/{other}", {})[name] = values["auroc"]
                rows.setdefault(f"fpr_at_95_tpr/{score}/{other}", {})[name] = values["fpr_at_95_tpr"]
        accuracy = r["class_conditional_samples"].get("fixed_classifier_accuracy")
        if accuracy is not None:
            rows.setdefault("class_conditional_samples/fixed_classifier_accuracy", {})[name] = accuracy
    return rows


def train_and_evaluate(config: Config, workdir: str, resume: bool = False, progress: bool = True) -> Dict:
    """Trains JEM (and, with `config.baseline`, the cross-entropy baseline), evaluates both;
    returns the content of `metrics.json`."""
    config.validate()
    dataset = data_lib.load(config.dataset, config.data_dir)
    train_x = data_lib.to_float_images(dataset.train.images)
    train_y = dataset.train.labels.astype(np.int32)
    test_x = data_lib.to_float_images(dataset.test.images)
    test_y = dataset.test.labels.astype(np.int32)
    if config.max_eval_images is not None:
        test_x, test_y = test_x[: config.max_eval_images], test_y[: config.max_eval_images]
    other = other_dataset(config)
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "config.json"), flatten(config))
    print(f"ebm_jax JEM experiment: data = {dataset.source}; workdir = {os.path.abspath(workdir)}")
    reports, timing = {}, {}
    for name in MODELS if config.baseline else MODELS[:1]:
        model, variables, summary = train(config, name, train_x, train_y, test_x, test_y,
                                          os.path.join(workdir, name), resume, progress)
        timing[name] = summary["timing"]
        reports[name] = evaluate(model, variables, config, test_x, test_y, train_x, other, workdir, name)
        reports[name]["train_steps"] = summary["start_step"] + summary["steps"]
        _log_final(os.path.join(workdir, name), reports[name]["train_steps"], reports[name])
    plots.save_reliability_diagram(os.path.join(workdir, "reliability.png"),
                                   {name: r["reliability"] for name, r in reports.items()})
    report = {"data": dataset.source, "models": reports, "table": side_by_side(reports), "timing": timing}
    write_json(os.path.join(workdir, "metrics.json"), report)
    return report


def restore_model(workdir: str, name: str = "jem", which: str = "latest"):
    """`(model, variables)` of `name` ("jem" or "cross_entropy") in a finished or interrupted run's
    `workdir`, read with its `config.json`: `model.apply(variables, x)` = E(x),
    `model.apply(variables, x, y)` = E(x, y), `method="probs"` = p(y | x)."""
    with open(os.path.join(workdir, "config.json")) as f:
        config = apply_flat(Config(), json.load(f))
    model = build_model(config)
    objective = build_objective(config, name)
    first = {"x": np.zeros((config.batch_size, *SHAPE), np.float32), "y": np.zeros((config.batch_size,), np.int32)}
    template = create_train_state(jax.random.key(0), model, objective, build_optimizer(config), first)
    return model, variables_of(restore_state(os.path.join(workdir, name, "checkpoints"), which, template))


def _log_final(workdir: str, step: int, report: Dict) -> None:
    """The final numbers as scalars (TensorBoard and metrics.jsonl) at the last step."""
    values = {"final/test_accuracy": report["test_accuracy"], "final/ece_15_bins": report["ece_15_bins"]}
    for score in ood.CLASSIFIER_SCORES:
        for other, row in report["ood"].get(score, {}).items():
            values.update({f"ood/{score}/{other}/{k}": v for k, v in row.items()})
    accuracy = report["class_conditional_samples"].get("fixed_classifier_accuracy")
    if accuracy is not None:
        values["samples/fixed_classifier_accuracy"] = accuracy
    writer = MetricWriter(workdir)
    try:
        writer.scalars(step, values)
    finally:
        writer.close()

