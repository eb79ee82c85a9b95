"""Every objective plugs into `make_train_step`: finite gradients, one compilation, the
state threaded (buffers, persistent chains, log Z, spectral-norm statistics); contrastive losses
and regularisers on hand-checkable numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_jax import losses
from ebm_jax.energies import MLPEnergy, ResNetEnergy, spectral_update
from ebm_jax.samplers import langevin
from ebm_jax.train import TrainState, create_train_state, make_train_step, objectives

BOUNDS = (-4.0, 4.0)
DATA = jax.random.normal(jax.random.key(0), (32, 2))


def _all_objectives():
    sampler = langevin.spec(5, 0.01, bounds=BOUNDS)
    return {
        "cd": objectives.replay_cd(sampler, BOUNDS, buffer_capacity=128),
        "pcd": objectives.persistent_cd(sampler, 48, BOUNDS),
        "cdk": objectives.cd_k(sampler),
        "cdk_hinge": objectives.cd_k(sampler, loss="hinge", margin=0.5),
        "dsm": objectives.dsm(0.1),
        "ssm": objectives.ssm(2),
        "ssm_vr": objectives.ssm(1, variance_reduced=True),
        "msdsm": objectives.msdsm([1.0, 0.3, 0.1]),
        "nce": objectives.nce(losses.fitted_gaussian(np.asarray(DATA)), nu=3),
        "nce_uniform": objectives.nce(losses.uniform_box(*BOUNDS, (2,))),
        "pcd_regularised": objectives.regularised(objectives.persistent_cd(sampler, 32, BOUNDS, loss="hinge"), 0.1, 0.1),
        "msdsm_regularised": objectives.regularised(objectives.msdsm([1.0, 0.1]), 0.1, 0.1),
    }


@pytest.mark.parametrize("name", sorted(_all_objectives()))
def test_objective_step_has_finite_gradients_compiles_once_and_learns(name):
    objective = _all_objectives()[name]
    model = MLPEnergy((16, 16), noise_conditional=objective.noise_conditional)
    optimizer = optax.adam(1e-2)
    state = create_train_state(jax.random.key(1), model, objective, optimizer, DATA)
    step = make_train_step(model.apply, objective, optimizer)
    params0 = jax.tree.map(np.asarray, state.params)
    objective_state0 = jax.tree.map(np.asarray, state.objective_state)
    for i in range(3):
        state, metrics = step(state, DATA + 0.01 * i)
    assert step._cache_size() == 1
    assert isinstance(state, TrainState) and int(state.step) == 3
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert float(metrics["grad_norm"]) > 0
    head_bias0 = params0["energy"]["Dense_2"]["bias"]
    head_bias = np.asarray(state.params["energy"]["Dense_2"]["bias"])
    if "sm" in name and "regularised" not in name:  # score matching cannot see a constant energy shift: the head's bias stays
        np.testing.assert_array_equal(head_bias, head_bias0)
        params0["energy"]["Dense_2"].pop("bias")
        state = state._replace(params=jax.tree.map(np.asarray, state.params))
        state.params["energy"]["Dense_2"].pop("bias")
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params0), jax.tree.leaves(state.params))]
    assert all(moved)  # every (other) parameter, log Z included, received a gradient
    if name.startswith("nce"):
        assert "log_z" in state.params["objective"]
    if name in ("cd", "pcd"):  # the negatives were written back
        changed = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(objective_state0), jax.tree.leaves(state.objective_state))]
        assert any(changed)


def test_resnet_spectral_state_is_threaded_through_the_train_state():
    model = ResNetEnergy(widths=(8, 16), groups=4)
    images = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1), minval=-1, maxval=1)
    sampler = langevin.spec(2, 1.0, bounds=(-1.0, 1.0))
    for objective in (objectives.dsm(0.1), objectives.cd_k(sampler)):
        optimizer = optax.adam(1e-3)
        state = create_train_state(jax.random.key(3), model, objective, optimizer, images)
        assert "batch_stats" in state.model_state and "batch_stats" not in state.params["energy"]
        step = make_train_step(model.apply, objective, optimizer, update_model_state=spectral_update(model))
        u0 = jax.tree.map(np.asarray, state.model_state)
        state, metrics = step(state, images)
        state, metrics = step(state, images)
        assert step._cache_size() == 1
        assert np.isfinite(float(metrics["loss"]))
        diffs = [float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(u0), jax.tree.leaves(state.model_state))]
        assert max(diffs) > 0  # the power iteration advanced, in the state


def test_replay_cd_matches_the_buffer_semantics():
    sampler = langevin.spec(1, 1e-6, noise_scale=0.0, bounds=BOUNDS)  # moves < 1e-5
    objective = objectives.replay_cd(sampler, BOUNDS, buffer_capacity=100, reinit_prob=0.0)
    _, buffer = objective.init(jax.random.key(0), DATA)
    assert int(buffer.size) == DATA.shape[0] and buffer.samples.shape == (100, 2)
    energy = lambda x: 0.5 * jnp.sum(x**2, -1)
    (real, fake), buffer2, metrics = objective.prepare(jax.random.key(1), energy, buffer, DATA)
    np.testing.assert_array_equal(real, DATA)  # no real-data noise by default
    assert float(metrics["fresh_fraction"]) == 0.0
    assert int(buffer2.size) == 2 * DATA.shape[0]
    np.testing.assert_array_equal(buffer2.samples[32:64], fake)
    # With reinit_prob 0 every chain starts at a filled slot (never the unused noise slots >= 32).
    dist = np.linalg.norm(np.asarray(fake)[:, None] - np.asarray(buffer.samples)[None], axis=-1)
    assert np.all(dist[:, :32].min(1) < 1e-4)
    assert np.all(dist[:, 32:].min(1) > 1e-4)


def test_cd_k_starts_at_the_data_and_pcd_chains_persist():
    energy = lambda x: 0.5 * jnp.sum(x**2, -1)
    tiny = langevin.spec(1, 1e-6, noise_scale=0.0)
    (_, fake), _, _ = objectives.cd_k(tiny).prepare(jax.random.key(0), energy, (), DATA)
    np.testing.assert_allclose(fake, DATA * (1 - 1e-6), rtol=1e-6)
    pcd = objectives.persistent_cd(tiny, 10, BOUNDS)
    _, chains = pcd.init(jax.random.key(1), DATA)
    (_, negatives), chains2, _ = pcd.prepare(jax.random.key(2), energy, chains, DATA)
    assert chains2.shape == (10, 2)
    np.testing.assert_allclose(chains2, chains * (1 - 1e-6), rtol=1e-6)
    np.testing.assert_array_equal(negatives, chains2)


def test_contrastive_losses_and_regularisers_on_hand_computed_values():
    real, fake = jnp.array([0.0, 1.0]), jnp.array([2.0, 0.5])
    loss, metrics = losses.contrastive_divergence(real, fake, alpha=0.1)
    np.testing.assert_allclose(float(loss), (0.5 - 1.25) + 0.1 * (0.5 + 2.125), rtol=1e-6)
    loss, _ = losses.hinge_contrastive(real, fake, margin=1.0)
    np.testing.assert_allclose(float(loss), (max(0, 1 + 0 - 2) + max(0, 1 + 1 - 0.5)) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="pairs"):
        losses.hinge_contrastive(real, fake[:1])
    # E(x) = 0.5 |x|^2 * c has grad c x, so the penalty is c^2 mean |x|^2.
    x = jnp.array([[1.0, 2.0], [0.0, 3.0]])
    gp = losses.gradient_penalty(lambda y: 1.5 * jnp.sum(y**2, -1), x)
    np.testing.assert_allclose(float(gp), 9.0 * (5.0 + 9.0) / 2, rtol=1e-6)


def test_dsm_loss_is_zero_mean_residual_for_the_exact_smoothed_score():
    """For N(0, s^2) data the smoothed score is exact for E = |x|^2 / (2 (s^2 + sigma^2)), and the
    DSM loss there equals its known irreducible value d/(2 sigma^2) * s^2/(s^2 + sigma^2)."""
    s, sigma, d = 1.0, 0.5, 3
    x = s * jax.random.normal(jax.random.key(0), (200000, d))
    exact = lambda y: 0.5 * jnp.sum(y**2, -1) / (s**2 + sigma**2)
    loss, _ = losses.denoising_score_matching(jax.random.key(1), exact, x, sigma)
    expected = d / (2 * sigma**2) * s**2 / (s**2 + sigma**2)
    np.testing.assert_allclose(float(loss), expected, rtol=0.01)
    # The un-smoothed energy |x|^2 / (2 s^2) pays the excess 0.5 d (1/s^2 - 1/v)^2 v, v = s^2 + sigma^2
    # (0.075 here), on the same noise; its Monte Carlo standard error is about 0.002.
    worse, _ = losses.denoising_score_matching(jax.random.key(1), lambda y: 0.5 * jnp.sum(y**2, -1) / s**2, x, sigma)
    v = s**2 + sigma**2
    np.testing.assert_allclose(float(worse - loss), 0.5 * d * (1 / s**2 - 1 / v) ** 2 * v, atol=0.008)


def test_objectives_reject_nonsense():
    sampler = langevin.spec(1, 0.01)
    with pytest.raises(ValueError):
        langevin.spec(1, 0.0)
    with pytest.raises(ValueError):
        langevin.spec(0, 0.1)
    with pytest.raises(ValueError, match="decreasing"):
        objectives.msdsm([0.1, 1.0])
    with pytest.raises(ValueError, match="sigma"):
        objectives.dsm(0.0)
    with pytest.raises(ValueError, match="nu"):
        objectives.nce(losses.uniform_box(-1, 1, (2,)), nu=0)
    with pytest.raises(ValueError, match="loss"):
        objectives.cd_k(sampler, loss="l1")
    with pytest.raises(ValueError, match="reinit_prob"):
        objectives.replay_cd(sampler, BOUNDS, reinit_prob=2.0)
    with pytest.raises(ValueError, match="num_chains"):
        objectives.persistent_cd(sampler, 0, BOUNDS)
    with pytest.raises(ValueError, match="noise-conditional"):
        MLPEnergy(noise_conditional=True).init(jax.random.key(0), DATA)
    with pytest.raises(ValueError, match="groups"):
        ResNetEnergy(widths=(6,), groups=4).init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))


def test_nan_hyper_parameters_raise_when_built():
    """A NaN setting fails every range check (NaN compares False), at build time, naming it."""
    from ebm_jax import presets
    from ebm_jax.samplers import hmc, langevin, mala

    nan = float("nan")
    spec = langevin.spec(3, 0.1)
    cases = {
        "step_size": [lambda: langevin.spec(3, nan), lambda: mala.spec(3, nan), lambda: hmc.spec(3, nan, 5)],
        "noise_scale": [lambda: langevin.spec(3, 0.1, noise_scale=nan)],
        "alpha": [lambda: objectives.replay_cd(spec, (-1, 1), 64, alpha=nan), lambda: presets.tutorial_objective(alpha=nan)],
        "real_noise": [lambda: objectives.replay_cd(spec, (-1, 1), 64, real_noise=nan)],
        "reinit_prob": [lambda: objectives.replay_cd(spec, (-1, 1), 64, reinit_prob=nan)],
        "px_weight": [lambda: objectives.jem(spec, (-1, 1), 64, px_weight=nan)],
        "pxy_weight": [lambda: objectives.jem(spec, (-1, 1), 64, pxy_weight=nan, num_classes=2)],
        "sigma": [lambda: objectives.dsm(nan)],
        "weights": [lambda: objectives.regularised(objectives.dsm(0.1), nan, 0.1)],
        "bounds": [lambda: objectives.replay_cd(spec, (nan, 1.0), 64)],
    }
    for name, builders in cases.items():
        for build in builders:
            with pytest.raises(ValueError, match=name):
                build()
