"""The JEM experiment end to end on the 300-image fixture (tiny settings)."""

import json
import os

import numpy as np

from ebm_jax import data
from ebm_jax.experiments.jem import restore_model
from ebm_jax.experiments.jem.__main__ import main

TINY = ["--epochs", "2", "--batch-size", "32", "--sgld-steps", "3", "--buffer-capacity", "256", "--sample-steps", "4",
        "--samples-per-class", "2", "--features", "8", "--warmup-steps", "5", "--max-eval-images", "60",
        "--eval-batch-size", "60", "--steer-images", "10", "--denoise-steps", "2", "--no-progress"]


def test_jem_and_the_baseline_write_every_output(tmp_path, mnist_tiny_dir, capsys):
    workdir = str(tmp_path / "run")
    assert main(["--data-dir", mnist_tiny_dir, "--workdir", workdir] + TINY) == 0
    assert "test_accuracy" in capsys.readouterr().out
    for name in ("metrics.json", "config.json", "reliability.png", "jem/samples.png", "cross_entropy/samples.png",
                 "jem/metrics.jsonl", "cross_entropy/metrics.jsonl", "jem/compositions.png", "jem/inpainting.png",
                 "jem/denoising.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert os.listdir(os.path.join(workdir, "jem", "tensorboard"))
    with open(os.path.join(workdir, "metrics.json")) as f:
        report = json.load(f)
    assert set(report["models"]) == {"jem", "cross_entropy"}
    for name, r in report["models"].items():
        assert r["train_steps"] == 18 and r["test_images"] == 60
        assert 0 <= r["test_accuracy"] <= 1 and 0 <= r["ece_15_bins"] <= 1
        assert set(r["ood"]) >= {"neg_energy", "neg_grad_norm", "max_prob"}
        assert r["ood"]["num_images"]["fashion_mnist"] == 60  # the fixture beside mnist_tiny
        samples = r["class_conditional_samples"]
        assert samples["per_class"] == 2 and 0 <= samples["fixed_classifier_accuracy"] <= 1
        assert set(samples["quality"]) == {"class_conditional_samples", "real_train_images (floor)",
                                           "uniform_noise (ceiling)"}
        assert sum(r["reliability"]["count"]) == 60
        if name == "cross_entropy":
            assert "steered_generation" not in r
            continue
        steered = r["steered_generation"]
        unconditional = steered["unconditional"]["class_shares"]
        excluded = max(range(10), key=lambda c: unconditional[str(c)])   # the class the model makes most of
        assert set(steered) == {"or_3_8", f"not_{excluded}", "and_5_unconditional", "unconditional", "inpainting",
                                "denoising"}
        assert steered["or_3_8"]["samples"] == 10 and 0 <= steered["or_3_8"]["share_in_the_two_classes"] <= 1
        not_row = steered[f"not_{excluded}"]
        assert abs(sum(not_row["class_shares"].values()) - 1.0) < 1e-9 and not_row["excluded_class"] == excluded
        assert not_row["share_of_that_class_unconditional"] == unconditional[str(excluded)]
        assert abs(sum(not_row["model_class_shares"].values()) - 1.0) < 1e-9
        for half in ("upper_half_observed", "left_half_observed"):
            row = steered["inpainting"][half]
            assert row["mse_hidden_half"] >= 0 and row["mse_hidden_half_mean_image_fill"] > 0
        assert steered["denoising"]["psnr_noisy_db"] > 0
    table = report["table"]
    assert set(table["test_accuracy"]) == {"jem", "cross_entropy"}
    assert "auroc/max_prob/fashion_mnist" in table and "auroc/neg_energy/uniform_noise" in table
    # Only JEM samples during training.
    with open(os.path.join(workdir, "jem", "metrics.jsonl")) as f:
        jem_keys = set().union(*(json.loads(line) for line in f))
    with open(os.path.join(workdir, "cross_entropy", "metrics.jsonl")) as f:
        ce_keys = set().union(*(json.loads(line) for line in f))
    assert {"train/energy_fake", "train/loss_ce", "val/accuracy", "final/test_accuracy"} <= jem_keys
    assert "train/energy_fake" not in ce_keys and "train/loss_ce" in ce_keys
    # The trained model comes back with one call and gives the reported accuracy.
    model, variables = restore_model(workdir, "jem")
    test = data.load("mnist", mnist_tiny_dir).test
    probs = np.asarray(model.apply(variables, data.to_float_images(test.images[:60]), method="probs"))
    assert np.mean(probs.argmax(-1) == test.labels[:60]) == report["models"]["jem"]["test_accuracy"]


def test_the_pxy_flag_gives_jem_class_buffers_and_one_step_runs():
    """--pxy-weight reaches the objective: JEM's state holds the per-class rings (10 x 32 here)
    beside the p(x) buffer, a step logs the p(x | y) metrics; the baseline has neither."""
    import jax

    from ebm_jax.experiments.jem import run
    from ebm_jax.experiments.jem.config import Config
    from ebm_jax.train import create_train_state

    config = Config(pxy_weight=1.0, buffer_capacity=320, batch_size=8, features=8, sgld_steps=2)
    batch = {"x": np.zeros((8, 28, 28, 1), np.float32), "y": np.arange(8, dtype=np.int32)}
    for name, keys in (("jem", {"px", "pxy"}), ("cross_entropy", set())):
        model, objective, optimizer = run.build_model(config), run.build_objective(config, name), run.build_optimizer(config)
        state = create_train_state(jax.random.key(0), model, objective, optimizer, batch)
        assert set(state.objective_state) == keys
        if name == "jem":
            assert state.objective_state["pxy"].samples.shape == (10, 32, 28, 28, 1)
            _, metrics = run.make_train_step(model.apply, objective, optimizer)(state, batch)
            assert {"pxy_energy_fake", "pxy_fresh_fraction", "energy_fake"} <= set(metrics)


def test_bad_settings_are_clear_errors(capsys):
    assert main(["--px-weight", "-1"]) == 2
    assert "px_weight must be >= 0" in capsys.readouterr().err
    assert main(["--batch-size", "64", "--buffer-capacity", "32"]) == 2
    assert "exceeds buffer_capacity" in capsys.readouterr().err
    assert main(["--batch-size", "64", "--buffer-capacity", "320", "--pxy-weight", "1"]) == 2
    assert "each class's buffer holds buffer_capacity / 10 = 32" in capsys.readouterr().err
