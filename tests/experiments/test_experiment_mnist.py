import dataclasses
import json
import os
import re

import jax
import numpy as np
import pytest

from ebm_jax import presets
from ebm_jax.experiments.mnist import Config, train_and_evaluate
from ebm_jax.experiments.mnist.__main__ import main
from ebm_jax.experiments.mnist.config import SamplerConfig
from ebm_jax.experiments.mnist.run import build, objective_for
from ebm_jax.train import create_train_state
from ebm_jax.train.checkpoint import restore_state

OUTPUTS = ["config.json", "metrics.json", "metrics.jsonl", "buffer.png", "generation_steps.png",
           "samples.png", "energy_hist.png", "training_curves.png", "generation_energy.png"]


# The command-line runs' network and final report at the sizes of `tiny_config`.
SMALL_EVAL = ["--features", "8", "--generation-steps", "8", "--generation-snapshots", "4", "--generation-chains", "4",
              "--num-samples", "8", "--num-noise-images", "64", "--eval-batch-size", "64"]


def tiny_config(data_dir, **overrides):
    """300 training images, batch 32: 9 steps per epoch."""
    base = Config(data_dir=data_dir, features=8, epochs=2, batch_size=32, sampler=SamplerConfig(num_steps=3),
                  buffer_capacity=256, generation_steps=8, generation_snapshots=4,
                  generation_chains=4, num_samples=8, num_noise_images=64, eval_batch_size=64,
                  log_every=2, quality_samples=0, ood_benchmark=False)
    return dataclasses.replace(base, **overrides)


def _latest_state(workdir, config):
    model, optimizer, _ = build(config, 9)
    template = create_train_state(jax.random.key(0), model, objective_for(config, presets.tutorial_sampler(1)),
                                  optimizer, np.zeros((config.batch_size, 28, 28, 1), np.float32))
    return restore_state(os.path.join(workdir, "checkpoints"), "latest", template)


def test_smoke_run_writes_every_output(tmp_path, mnist_tiny_dir):
    workdir = str(tmp_path / "run")
    report = train_and_evaluate(tiny_config(mnist_tiny_dir, quality_samples=16, ood_benchmark=True), workdir,
                                progress=False)
    for name in OUTPUTS:
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints", "latest")), key=int) == ["9", "18"]  # newest two
    assert os.listdir(os.path.join(workdir, "checkpoints", "best"))
    with open(os.path.join(workdir, "metrics.json")) as f:
        saved = json.load(f)
    assert saved["train_steps"] == 18 and report["train_steps"] == 18
    assert saved["num_images"] == {"noise": 64, "train": 300, "test": 100}
    assert set(saved["edits_of_test_images"]) == {"noisy_sigma_0.3", "flipped", "shrunk"}
    for key in ("uniform_noise", "train_images", "test_images", "generated_samples"):
        assert np.isfinite(saved["mean_energy"][key])
    chains = saved["generation_chains"]
    assert chains["chains"] == 4 and chains["steps"] == 8 and chains["split_rhat"] > 0 and chains["ess"] > 0
    quality = saved["sample_quality"]["scores"]
    assert len(quality) == 4 and all(row["num_images"] == 16 and row["frechet_distance"] >= 0 for row in quality.values())
    # The OOD benchmark, with the Fashion-MNIST fixture found beside mnist_tiny.
    ood = saved["ood"]
    sets = {"fashion_mnist", "uniform_noise", "gaussian_noise", "noisy_sigma_0.3", "flipped", "shrunk_bottom_right"}
    assert set(ood["neg_energy"]) == set(ood["neg_grad_norm"]) == sets
    assert ood["num_images"]["fashion_mnist"] == 100 and "fashion_mnist" in ood["other_dataset"]
    for table in (ood["neg_energy"], ood["neg_grad_norm"]):
        for row in table.values():
            assert 0 <= row["auroc"] <= 1 and 0 <= row["fpr_at_95_tpr"] <= 1 and 0 <= row["detection_error"] <= 0.5
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    logged = set().union(*records)
    for key in ("train/loss", "train/loss_cd", "train/loss_reg", "train/energy_real",
                "train/energy_fake", "val/energy_uniform_noise_1024", "val/cd_gap"):
        assert key in logged, key
    # The final tables, logged as scalars at the last step (TensorBoard gets the same).
    final = records[-1]
    assert final["step"] == 18
    assert final["ood/neg_energy/fashion_mnist/auroc"] == ood["neg_energy"]["fashion_mnist"]["auroc"]
    assert final["quality/uniform_noise/frechet_distance"] == quality["uniform_noise (ceiling)"]["frechet_distance"]
    assert final["chains/split_rhat"] == chains["split_rhat"]
    # The tutorial's single example: the first test image and its three edits.
    one = saved["one_test_image"]
    assert one["test_index"] == 0 and set(one) == {"test_index", "energy", "energy_noisy_sigma_0.3",
                                                    "energy_flipped", "energy_shrunk"}


def other_digits(data_dir, tmp_path):
    """A copy of the fixture folder whose training images are mirrored: same sizes, other data."""
    from ebm_jax.data.idx import read_idx, write_idx
    from ebm_jax.data.mnist import FILES

    folder = tmp_path / "mirrored"
    folder.mkdir()
    for key, name in FILES.items():
        array = read_idx(os.path.join(data_dir, name))
        write_idx(folder / name, array[:, :, ::-1].copy() if key == "train_images" else array)
    return str(folder)


def test_resume_is_bit_identical(tmp_path, mnist_tiny_dir):
    """12 steps in one go vs 5 steps, then --resume up to 12 (across the epoch boundary at 9)."""
    config = tiny_config(mnist_tiny_dir, max_steps=12)
    train_and_evaluate(config, str(tmp_path / "straight"), progress=False)
    train_and_evaluate(dataclasses.replace(config, max_steps=5), str(tmp_path / "split"), progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train_and_evaluate(config, str(tmp_path / "split"), progress=False)
    train_and_evaluate(config, str(tmp_path / "split"), resume=True, progress=False)
    a = _latest_state(str(tmp_path / "straight"), config)
    b = _latest_state(str(tmp_path / "split"), config)
    assert int(a.step) == int(b.step) == 12
    leaves_a, leaves_b = jax.tree.leaves((a.params, a.opt_state, a.objective_state)), jax.tree.leaves(
        (b.params, b.opt_state, b.objective_state))
    for x, y in zip(leaves_a, leaves_b):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(ValueError, match=r"different settings than the saved run: \['alpha'\]"):
        train_and_evaluate(dataclasses.replace(config, alpha=0.5), str(tmp_path / "split"), resume=True, progress=False)
    with pytest.raises(ValueError, match="other training data"):   # the same settings on other digits
        train_and_evaluate(dataclasses.replace(config, data_dir=other_digits(mnist_tiny_dir, tmp_path)),
                           str(tmp_path / "split"), resume=True, progress=False)


def test_cli_errors_are_clear(tmp_path, mnist_tiny_dir, capsys):
    cases = [
        (["--data-dir", str(tmp_path / "missing")], "does not exist"),
        (["--data-dir", mnist_tiny_dir, "--batch-size", "1000"], "larger than the data"),
        (["--data-dir", mnist_tiny_dir, "--sampler-step-size", "-10"], "step_size must be > 0"),
        (["--data-dir", mnist_tiny_dir, "--epochs", "0"], "epochs must be >= 1"),
        # settings checked before JAX starts, each naming its flag
        (["--learning-rate", "inf"], "learning_rate must be a finite number"),
        (["--sampler-step-size", "nan"], "sampler.step_size must be a finite number"),
        (["--b1", "1.0"], "b1 must be in [0, 1)"),
        (["--b2", "-0.1"], "b2 must be in [0, 1)"),
        (["--lr-decay-per-epoch", "-0.5"], "lr_decay_per_epoch must be > 0"),
        (["--clip-norm", "0"], "clip_norm must be > 0"),
        (["--max-eval-images", "0"], "max_eval_images must be >= 1"),
        (["--seed", "-1"], "seed must be in [0, 2^32)"),
        (["--seed", str(2**32)], "seed must be in [0, 2^32)"),
        (["--checkpoint-every", "0"], "checkpoint_every must be >= 1"),
        (["--rollback-factor", "1.5"], "rollback_factor must be in (0, 1)"),
        # several processes: the three flags together, or --distributed alone
        (["--num-processes", "2"], "needs --coordinator-address, --process-id as well"),
        (["--coordinator-address", "h:1", "--num-processes", "2", "--process-id", "2"], "--process-id must be in"),
        (["--coordinator-address", "h", "--num-processes", "2", "--process-id", "0"], "must be HOST:PORT"),
        (["--distributed", "--process-id", "0"], "--distributed detects the cluster"),
    ]
    for args, message in cases:
        assert main(args + ["--workdir", str(tmp_path / "w"), "--no-progress"]) == 2
        assert message in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for workdir, message in ((blocker, "is a file"), (blocker / "below", "cannot be written to")):
        assert main(["--data-dir", mnist_tiny_dir, "--workdir", str(workdir), "--no-progress"]) == 2
        assert message in capsys.readouterr().err


def test_cli_wrong_image_shape(tmp_path, capsys):
    from ebm_jax.data.idx import write_idx
    from ebm_jax.data.mnist import FILES

    for key, name in FILES.items():
        write_idx(tmp_path / name, np.zeros((40, 32, 32) if "images" in key else (40,), np.uint8))
    assert main(["--data-dir", str(tmp_path), "--workdir", str(tmp_path / "w"), "--no-progress"]) == 2
    assert "expected 28x28" in capsys.readouterr().err


def test_crash_keeps_progress_and_partial_writes_are_ignored(tmp_path, mnist_tiny_dir, monkeypatch):
    """An exception mid-run still leaves the latest state on disk; a half-written checkpoint
    folder (as orbax names an unfinished write) is ignored on resume."""
    from ebm_jax.experiments.mnist import run

    config = tiny_config(mnist_tiny_dir, max_steps=12)
    workdir = str(tmp_path / "run")
    calls = {"n": 0}
    original = run._Evaluator.end_of_epoch

    def failing_end_of_epoch(self, state, writer, steps_per_epoch):
        calls["n"] += 1
        if int(state.step) > steps_per_epoch:
            raise RuntimeError("simulated crash")
        return original(self, state, writer, steps_per_epoch)

    monkeypatch.setattr(run._Evaluator, "end_of_epoch", failing_end_of_epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_and_evaluate(config, workdir, progress=False)
    assert calls["n"] == 2
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints", "latest")), key=int) == ["9", "12"]  # 12: on the way out
    monkeypatch.setattr(run._Evaluator, "end_of_epoch", original)

    partial = os.path.join(workdir, "checkpoints", "latest", "13.orbax-checkpoint-tmp-1234567")
    os.makedirs(os.path.join(partial, "state"))
    with open(os.path.join(partial, "state", "garbage"), "wb") as f:
        f.write(b"\x00" * 100)
    state = _latest_state(workdir, config)
    assert int(state.step) == 12
    report = train_and_evaluate(dataclasses.replace(config, max_steps=14), workdir, resume=True, progress=False)
    assert report["train_steps"] == 14


def test_divergence_is_reported_and_not_checkpointed(tmp_path, mnist_tiny_dir, monkeypatch, capsys):
    """A non-finite loss after step 10 whatever the learning rate: three rollbacks to the end of
    epoch 0 (step 9), each with the learning rate halved, then a clear error; the diverged state
    is never saved."""
    from ebm_jax.experiments.mnist import run

    real_make = run.make_train_step

    def make_diverging_step(*args, **kwargs):
        step = real_make(*args, **kwargs)

        def diverging(state, batch):
            state, metrics = step(state, batch)
            bad = state.step > 10
            return state, dict(metrics, loss=jax.numpy.where(bad, jax.numpy.nan, metrics["loss"]))

        return diverging

    monkeypatch.setattr(run, "make_train_step", make_diverging_step)
    workdir = str(tmp_path / "run")
    with pytest.raises(FloatingPointError, match=r"at step 12 after 3 rollbacks \(learning rate x 0.125\)"):
        train_and_evaluate(tiny_config(mnist_tiny_dir, max_steps=14), workdir, progress=False)
    assert os.listdir(os.path.join(workdir, "checkpoints", "latest")) == ["9"]
    assert capsys.readouterr().out.count("rolled back to step 9") == 3


def test_sigterm_saves_and_resume_continues(tmp_path, mnist_tiny_dir):
    """A real kill (SIGTERM) of the CLI mid-training: exit code 130, the state at that moment is
    saved, and --resume continues from it."""
    import signal
    import subprocess
    import sys
    import time

    workdir = tmp_path / "run"
    args = [sys.executable, "-m", "ebm_jax.experiments.mnist", "--data-dir", mnist_tiny_dir,
            "--workdir", str(workdir), "--batch-size", "32", "--sampler-num-steps", "3", "--max-eval-images", "50",
            "--quality-samples", "0", "--no-ood-benchmark", "--no-progress", "--log-every", "2"] + SMALL_EVAL
    proc = subprocess.Popen(args + ["--max-steps", "100000", "--epochs", "1000"], stderr=subprocess.PIPE, text=True)
    log = workdir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and '"step": 4' in log.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err
    # the step the signal landed in is saved, whether or not it ends an epoch
    interrupted = int(re.search(r"at step (\d+)", err).group(1))
    saved = [int(s) for s in os.listdir(workdir / "checkpoints" / "latest") if s.isdigit()]
    assert max(saved) == interrupted >= 4
    resumed = subprocess.run(args + ["--max-steps", str(interrupted + 2), "--resume"], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.load(open(workdir / "metrics.json"))["train_steps"] == interrupted + 2


def test_two_processes_run_the_experiment(tmp_path, mnist_tiny_dir, run_processes):
    """The command line over two processes on JAX's distributed runtime (one CPU device each):
    process 0 writes every output and the report, process 1 feeds its rows of each batch and
    exits quietly; metrics are logged once per step. (Their numbers against one process:
    tests/train/test_multiprocess.py.)"""
    import sys

    workdir = tmp_path / "two"
    command = [sys.executable, "-m", "ebm_jax.experiments.mnist", "--data-dir", mnist_tiny_dir, "--workdir",
               str(workdir), "--max-steps", "4", "--batch-size", "32", "--sampler-num-steps", "3",
               "--quality-samples", "0", "--no-ood-benchmark", "--no-progress", "--log-every", "2", "--cpu-devices",
               "1", "--compilation-cache", "none", "--coordinator-address", "localhost:PORT", "--num-processes",
               "2"] + SMALL_EVAL
    codes, outs, errors = run_processes(command, 2)
    assert codes == [0, 0], errors
    assert "2 device(s) in 2 processes" in outs[0] and "done: 4 steps" in outs[0]
    assert "MNIST experiment" not in outs[1] and "done" not in outs[1], outs[1]  # (gloo prints its connections)
    for name in OUTPUTS:
        assert os.path.getsize(workdir / name) > 0, name
    saved = json.load(open(workdir / "metrics.json"))
    assert saved["processes"] == 2 and saved["train_steps"] == 4 and len(saved["devices"]) == 2
    train_steps = [r["step"] for r in map(json.loads, open(workdir / "metrics.jsonl")) if "train/loss" in r]
    assert train_steps == [2, 4]


@pytest.mark.parametrize("sampler", ["mala", "hmc"])
def test_cli_runs_with_other_samplers(sampler, tmp_path, mnist_tiny_dir):
    workdir = tmp_path / sampler
    args = ["--data-dir", mnist_tiny_dir, "--workdir", str(workdir), "--sampler", sampler, "--max-steps", "3",
            "--batch-size", "32", "--sampler-num-steps", "2", "--sampler-warmup-steps", "20", "--max-eval-images", "40",
            "--quality-samples", "0", "--no-ood-benchmark", "--no-progress"] + SMALL_EVAL
    assert main(args) == 0
    report = json.load(open(workdir / "metrics.json"))
    assert report["train_steps"] == 3 and np.isfinite(report["mean_energy"]["generated_samples"])
    assert json.load(open(workdir / "config.json"))["sampler.name"] == sampler
    # the step size came from the warm-up, not a fixed default
    assert report["sampler"]["name"] == sampler and report["sampler"]["step_size"] > 0
    assert report["sampler"]["step_size"] != 1e-3


def test_default_workdir_names_the_changed_settings():
    from ebm_jax.experiments import cli
    from ebm_jax.experiments.mnist.config import get_config
    from ebm_jax.experiments.mnist.__main__ import parse_args

    preset = get_config("default")
    args = parse_args(["--sampler", "hmc", "--batch-size", "64", "--data-dir", "somewhere"])
    config = cli.apply_flags(preset, args)
    assert config.sampler.name == "hmc" and config.batch_size == 64 and config.data_dir == "somewhere"
    assert cli.default_workdir("runs/mnist_default", config, preset) == "runs/mnist_default_batch_size=64_sampler-name=hmc"
    assert cli.default_workdir("runs/mnist_default", preset, preset) == "runs/mnist_default"


def test_every_flag_has_help_and_a_default(capsys):
    from ebm_jax.experiments.mnist.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    for field in ("--batch-size", "--sampler ", "--sampler-step-size", "--seed", "--max-eval-images"):
        assert field in text, field
    assert text.count("(default:") >= len(Config.__dataclass_fields__) + len(SamplerConfig.__dataclass_fields__) - 1
