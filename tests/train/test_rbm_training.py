"""RBM training through the one train step: CD-1 against a hand computation, PCD and PT
negatives, and a DBN-style second layer trained on hidden activations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_jax.energies import BernoulliRBM, rbm
from ebm_jax.samplers import gibbs, tempering
from ebm_jax.train import create_train_state, energy_function, make_train_step, objectives


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_cd1_update_is_the_hand_computation():
    """One SGD step of CD-1 changes W by lr (<v p(h|v)>_data - <v' p(h|v')>_recon), b by
    lr (<v> - <v'>), c by lr (<p(h|v)> - <p(h|v')>), v' the step's Gibbs reconstruction."""
    num_hidden, lr = 3, 0.1
    batch = jnp.asarray(np.random.default_rng(0).random((4, 5)) < 0.5, jnp.float32)
    objective = objectives.cd_k(gibbs.spec(1, num_hidden), alpha=0.0)
    model, optimizer = BernoulliRBM(num_hidden, init_scale=0.5), optax.sgd(lr)
    state = create_train_state(jax.random.key(0), model, objective, optimizer, batch)
    before = jax.tree.map(np.asarray, state.params["energy"])

    # The negatives the step draws: its prepare with the step's key (fold_in(rng_key, step)).
    frozen = energy_function(model.apply, state.params, state.model_state)
    (_, recon), _, _ = objective.prepare(jax.random.fold_in(state.rng_key, 0), frozen, (), batch)
    v, r = np.asarray(batch, np.float64), np.asarray(recon, np.float64)
    assert set(np.unique(r)) <= {0.0, 1.0}
    W, b, c = (before[k].astype(np.float64) for k in "Wbc")
    ph_data, ph_recon = sigmoid(v @ W + c), sigmoid(r @ W + c)
    expected = {"W": W + lr * (v.T @ ph_data - r.T @ ph_recon) / 4, "b": b + lr * (v - r).mean(0),
                "c": c + lr * (ph_data - ph_recon).mean(0)}

    state, metrics = make_train_step(model.apply, objective, optimizer)(state, batch)
    for k in "Wbc":
        np.testing.assert_allclose(state.params["energy"][k], expected[k], rtol=1e-5, atol=1e-6)
    assert np.isfinite(float(metrics["loss"]))


def _train(objective, data, num_hidden, steps, lr=0.05):
    model, optimizer = BernoulliRBM(num_hidden), optax.sgd(lr, momentum=0.5)
    state = create_train_state(jax.random.key(1), model, objective, optimizer, data[:20])
    step = make_train_step(model.apply, objective, optimizer)
    for t in range(steps):
        state, metrics = step(state, data[(20 * t) % len(data):][:20])
    return state, metrics


def two_pattern_data(n=200):
    """Noisy copies of two 8-pixel patterns."""
    rng = np.random.default_rng(0)
    patterns = np.array([[1] * 4 + [0] * 4, [0] * 4 + [1] * 4], np.float32)
    clean = patterns[rng.integers(0, 2, n)]
    return jnp.asarray(np.abs(clean - (rng.random(clean.shape) < 0.05)), jnp.float32)


def test_pcd_and_pt_learn_the_patterns():
    """After 300 steps the model's likeliest states are the two patterns: their free energy is
    below that of every other state by a margin, for PCD and for PT negatives."""
    data = two_pattern_data()
    all_states = jnp.asarray(np.array(np.meshgrid(*[[0, 1]] * 8)).reshape(8, -1).T, jnp.float32)
    patterns = jnp.array([[1] * 4 + [0] * 4, [0] * 4 + [1] * 4], jnp.float32)
    pcd = objectives.persistent_cd(gibbs.spec(1, 6), 20, (0.0, 1.0), alpha=0.0)
    pt = objectives.persistent_pt(gibbs.spec(1, 6), tempering.geometric_betas(4, 0.3), 20, (0.0, 1.0), alpha=0.0)
    for objective in (pcd, pt):
        state, metrics = _train(objective, data, 6, 300)
        params = rbm.as_params(state.params["energy"])
        f_all = rbm.free_energy(params, all_states)
        f_patterns = rbm.free_energy(params, patterns)
        others = f_all[~jnp.any(jnp.all(all_states[:, None] == patterns[None], -1), -1)]
        assert float(jnp.max(f_patterns)) + 1.0 < float(jnp.min(others))
    chains, steps = state.objective_state
    assert chains.shape == (20, 4, 8) and int(steps) == 300
    assert 0 < float(metrics["swap_acceptance"]) <= 1
