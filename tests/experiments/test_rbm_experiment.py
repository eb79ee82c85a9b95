"""The RBM experiment end to end on the tiny MNIST fixture: every objective through the command
line, the DBN, exact resume, clear errors."""

import dataclasses
import json
import os

import numpy as np
import pytest

from ebm_jax.experiments.rbm import get_config, load_binarized, train_rbm
from ebm_jax.experiments.rbm.__main__ import main

TINY = ["--num-hidden", "16", "--epochs", "2", "--batch-size", "50", "--ais-chains", "16", "--ais-betas", "200",
        "--num-samples", "10", "--sample-steps", "5", "--metric-images", "40", "--log-every", "3", "--pt-replicas", "3"]


@pytest.mark.parametrize("objective", ["cd1", "cd25", "pcd", "pt"])
def test_cli_writes_every_output(objective, tmp_path, mnist_tiny_dir, capsys):
    workdir = tmp_path / "run"
    extra = ["--dbn", "16", "8"] if objective == "pcd" else []
    assert main(["--data-dir", mnist_tiny_dir, "--workdir", str(workdir), "--no-progress", "--objective", objective,
                 *TINY, *extra]) == 0
    assert "stochastically binarized" in capsys.readouterr().out
    outputs = {"metrics.json", "metrics.jsonl", "config.json", "filters.png", "samples_gibbs.png", "samples_pt.png",
               "curves.png", "checkpoints", "tensorboard"}
    assert outputs <= set(os.listdir(workdir))
    with open(workdir / "metrics.json") as f:
        report = json.load(f)
    ll = report["log_likelihood"]
    assert report["train_steps"] == 2 * (300 // 50)
    assert np.isfinite(ll["log_z"]) and ll["log_z_std_error"] > 0
    # log p(v) of binary images under a normalised model is negative, and log Z exceeds the
    # base-rate model's only by what the weights add: a sanity bound, not a quality claim.
    assert ll["test"] < 0 and ll["train"] < 0
    assert report["ais"]["chains"] == 16 and report["ais"]["betas"] == 200
    assert "binarized" in report["data"]
    with open(workdir / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert any("val/recon_error_test" in r and "val/pseudo_ll_train" in r for r in records)
    if objective == "pcd":
        assert os.path.exists(workdir / "dbn_samples.png") and os.path.isdir(workdir / "dbn_layer2")
        assert report["dbn"]["layers"] == [16, 8]


def test_resume_reproduces_an_uninterrupted_run(tmp_path, mnist_tiny_dir):
    config = get_config(data_dir=mnist_tiny_dir, num_hidden=8, epochs=2, batch_size=50, log_every=4, metric_images=20)
    train, test, _ = load_binarized(config)
    straight, _ = train_rbm(config, train, str(tmp_path / "straight"), test, progress=False)
    train_rbm(dataclasses.replace(config, max_steps=5), train, str(tmp_path / "split"), test, progress=False)
    with pytest.raises(FileExistsError):
        train_rbm(config, train, str(tmp_path / "split"), test, progress=False)
    resumed, summary = train_rbm(config, train, str(tmp_path / "split"), test, resume=True, progress=False)
    assert summary["start_step"] == 5
    for k in "Wbc":
        np.testing.assert_array_equal(straight[k], resumed[k])


def test_binarization_is_fixed_by_the_seed(mnist_tiny_dir):
    a_train, a_test, _ = load_binarized(get_config(data_dir=mnist_tiny_dir))
    b_train, _, _ = load_binarized(get_config(data_dir=mnist_tiny_dir))
    c_train, _, _ = load_binarized(get_config(data_dir=mnist_tiny_dir, seed=1))
    assert set(np.unique(a_train)) == {0.0, 1.0} and a_train.shape == (300, 784) and a_test.shape == (100, 784)
    np.testing.assert_array_equal(a_train, b_train)
    assert not np.array_equal(a_train, c_train)


def test_cli_errors_are_clear(tmp_path, mnist_tiny_dir, capsys):
    assert main(["--data-dir", mnist_tiny_dir, "--workdir", str(tmp_path), "--dbn", "32", "8", "--num-hidden", "16"]) == 2
    assert "dbn must list" in capsys.readouterr().err
    assert main(["--data-dir", mnist_tiny_dir, "--workdir", str(tmp_path), "--momentum", "1.5"]) == 2
    assert "momentum" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["rbm", "toy2d", "mnist"])
def test_help_lists_the_flags(module, capsys):
    """`--help` of every experiment prints (help texts with a literal % included)."""
    import importlib

    entry = importlib.import_module(f"ebm_jax.experiments.{module}.__main__")
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["--help"])
    assert exit_info.value.code == 0 and "--seed" in capsys.readouterr().out
