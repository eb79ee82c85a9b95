"""The 2-D datasets' densities, the grid scores, and a smoke run of every objective through
`python -m ebm_jax.experiments.toy2d`."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax.data import toy2d
from ebm_jax.eval import density2d
from ebm_jax.experiments.toy2d.__main__ import main
from ebm_jax.experiments.toy2d.config import DATASETS, OBJECTIVES, get_config


def test_config_lists_exactly_the_library_datasets():
    assert sorted(DATASETS) == sorted(toy2d.DATASETS)


@pytest.mark.parametrize("name", sorted(toy2d.DATASETS))
def test_density_integrates_to_one_and_matches_its_sampler(name):
    dataset = toy2d.get_dataset(name)
    points, area = density2d.grid(4.0, 600)
    log_p = jax.jit(dataset.log_prob)(points)
    np.testing.assert_allclose(float(jnp.exp(jax.nn.logsumexp(log_p)) * area), 1.0, atol=2e-3)
    # The samples' mean log-density estimates -entropy; the grid gives it exactly (up to the
    # midpoint rule). They agree only if `sample` draws from `log_prob`.
    samples = dataset.sample(jax.random.key(0), 40000)
    log_p_samples = np.asarray(dataset.log_prob(samples))
    assert np.all(np.isfinite(log_p_samples))
    p = jnp.exp(log_p)
    neg_entropy = float(jnp.sum(jnp.where(p > 0, p * log_p, 0.0)) * area)
    se = log_p_samples.std(ddof=1) / np.sqrt(len(log_p_samples))
    assert abs(log_p_samples.mean() - neg_entropy) < 4 * se + 2e-3, (log_p_samples.mean(), neg_entropy, se)


def test_grid_nll_of_a_gaussian_energy_is_its_exact_nll():
    energy = lambda x: 0.5 * jnp.sum(x**2, -1) / 0.5**2 + 3.0  # N(0, 0.25 I), an arbitrary offset
    x = 0.5 * jax.random.normal(jax.random.key(0), (1000, 2))
    exact = np.mean(0.5 * np.sum(np.asarray(x) ** 2, -1) / 0.25) + np.log(2 * np.pi * 0.25)
    np.testing.assert_allclose(float(density2d.heldout_nll(energy, x, 4.0, 400)), exact, atol=1e-4)
    draws = density2d.grid_samples(jax.random.key(1), energy, 20000, 4.0, 400)
    np.testing.assert_allclose(np.cov(np.asarray(draws), rowvar=False), 0.25 * np.eye(2), atol=0.015)


def test_mmd_and_mode_coverage():
    x = jax.random.normal(jax.random.key(0), (1000, 2))
    y = jax.random.normal(jax.random.key(1), (1000, 2))
    same = float(density2d.mmd2(x, y, 0.5))
    shifted = float(density2d.mmd2(x, y + 1.0, 0.5))
    assert abs(same) < 0.01 < shifted
    modes = jnp.array([[0.0, 0.0], [5.0, 0.0]])
    samples = jnp.array([[0.1, 0.0], [0.0, 0.2], [5.0, 0.1], [2.5, 0.0]])
    shares, off = density2d.mode_coverage(samples, modes, 0.5)
    np.testing.assert_allclose(shares, [0.5, 0.25])
    np.testing.assert_allclose(float(off), 0.25)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_toy2d_experiment_runs_every_objective(objective, tmp_path, capsys):
    args = ["--objective", objective, "--workdir", str(tmp_path), "--steps", "5", "--eval-steps", "5",
            "--num-eval-samples", "50", "--grid-size", "40", "--mcmc-steps", "3", "--no-progress"]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("heldout_nll_model", "heldout_nll_true", "mmd2_samples", "mmd2_grid_samples", "train_seconds"):
        assert np.isfinite(metrics[key]), key
    assert len(metrics["mode_shares"]) == 8
    assert (tmp_path / "landscape.png").stat().st_size > 1000
    assert (tmp_path / "energy_landscape.png").stat().st_size > 1000
    assert "outputs in" in capsys.readouterr().out


def test_toy2d_rejects_bad_settings(capsys):
    assert main(["--steps", "0"]) == 2
    assert "steps must be >= 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown dataset"):
        get_config(dataset="spiral")
    with pytest.raises(ValueError, match="below"):
        get_config(msdsm_sigma_min=2.0)


@pytest.mark.parametrize("objective", ["cd", "nce"])
def test_interrupted_run_resumes_to_the_same_bits(objective, tmp_path, monkeypatch):
    """A run interrupted (Ctrl-C) after 7 of 12 steps saves its state; `--resume` continues it to
    the same parameters, objective state (replay buffer) and optimizer state as a run that was
    never interrupted, and to the same scores."""
    from ebm_jax.experiments.toy2d import run
    from ebm_jax.train import create_train_state
    from ebm_jax.train.checkpoint import Checkpointer

    config = get_config(objective=objective, steps=12, mcmc_steps=3, eval_steps=5, num_eval_samples=50, grid_size=40,
                        log_every=3, checkpoint_every=5)
    straight = run.train_and_evaluate(config, str(tmp_path / "straight"), progress=False)

    real_batch_fn = run.batch_fn

    def interrupted_batch_fn(config, data):
        batches = real_batch_fn(config, data)

        def batch(t):
            if t == 7:
                raise KeyboardInterrupt("simulated Ctrl-C")
            return batches(t)

        return batch

    monkeypatch.setattr(run, "batch_fn", interrupted_batch_fn)
    with pytest.raises(KeyboardInterrupt):
        run.train_and_evaluate(config, str(tmp_path / "split"), progress=False)
    assert sorted(os.listdir(tmp_path / "split" / "checkpoints" / "latest")) == ["5", "7"]  # the newest two
    monkeypatch.setattr(run, "batch_fn", real_batch_fn)
    with pytest.raises(ValueError, match="different settings"):
        run.train_and_evaluate(get_config(**{**config.__dict__, "learning_rate": 0.1}), str(tmp_path / "split"),
                               resume=True, progress=False)
    resumed = run.train_and_evaluate(config, str(tmp_path / "split"), resume=True, progress=False)

    train_data = np.asarray(toy2d.get_dataset(config.dataset).sample(jax.random.split(jax.random.key(0))[0], 20000))
    objective_fn = run.build_objective(config, train_data)
    model, optimizer = run.build(config, objective_fn)
    template = create_train_state(jax.random.key(0), model, objective_fn, optimizer, train_data[:config.batch_size])
    states = []
    for name in ("straight", "split"):
        checkpoints = Checkpointer(str(tmp_path / name / "checkpoints"))
        states.append(checkpoints.restore(template)[0])
        checkpoints.close()
    assert int(states[0].step) == int(states[1].step) == 12
    for a, b in zip(jax.tree.leaves(states[0]._replace(rng_key=None)), jax.tree.leaves(states[1]._replace(rng_key=None))):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    for key in ("heldout_nll_model", "mmd2_samples"):
        assert straight[key] == resumed[key], key
