"""The one train step: pinned to the tutorial's former step, one compilation, donation,
determinism, chain groups, sharding over 8 fake devices for every objective."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from ebm_jax import presets
from ebm_jax.runtime import bit_exact
from ebm_jax.energies import TutorialCNN
from ebm_jax.samplers import langevin
from ebm_jax.train import TrainState, create_train_state, make_train_step

MODEL = TutorialCNN(features=8)
GOLDEN = os.path.join(os.path.dirname(__file__), "..", "fixtures", "tutorial_step_076719c.npz")


def _batch(i, n=16):
    return jax.random.uniform(jax.random.key(100 + i), (n, 28, 28, 1), minval=-1, maxval=1)


def _setup(sampler=None, capacity=64, **objective_kwargs):
    optimizer = presets.tutorial_optimizer(steps_per_epoch=10)
    objective = presets.tutorial_objective(sampler or presets.tutorial_sampler(4), buffer_capacity=capacity,
                                           **objective_kwargs)
    state = create_train_state(jax.random.key(0), MODEL, objective, optimizer, _batch(0))
    return state, make_train_step(MODEL.apply, objective, optimizer)


def test_pinned_to_the_former_tutorial_step():
    """Three steps of the tutorial's configuration of `replay_cd` against the former
    `make_train_step` (the tutorial's own step, deleted after commit 076719c), whose params,
    metrics and replay buffer after the same three steps are stored in
    `fixtures/tutorial_step_076719c.npz` (TutorialCNN(8), batch 16, buffer 64, 4 Langevin steps,
    seed 0, batches uniform noise from keys 100-102). The random stream is the same (the per-step
    key split into key_real, key_buffer, key_mcmc), so on a CPU the numbers agree to float
    tolerance (they came out bit-identical when the test was written)."""
    if jax.default_backend() != "cpu":
        pytest.skip("the fixture was recorded on a CPU")
    golden = np.load(GOLDEN)
    state, step = _setup()
    for i in range(3):
        state, metrics = step(state, _batch(i))
        assert set(metrics) == {k.split("/")[2] for k in golden if k.startswith(f"metrics/{i}/")} | {"grad_norm"}
        for name, value in metrics.items():
            np.testing.assert_allclose(float(value), golden[f"metrics/{i}/{name}"], rtol=1e-5, atol=1e-7, err_msg=name)
    for path, leaf in jax.tree_util.tree_leaves_with_path(state.params["energy"]):
        expected = golden["params['params']" + jax.tree_util.keystr(path)]
        np.testing.assert_allclose(leaf, expected, rtol=1e-5, atol=1e-7, err_msg=jax.tree_util.keystr(path))
    np.testing.assert_allclose(state.objective_state.samples, golden["buffer/samples"], rtol=1e-5, atol=1e-6)
    assert int(state.objective_state.size) == int(golden["buffer/size"])


def test_step_compiles_once_and_updates_state():
    state, step = _setup()
    params0 = jax.tree.map(np.asarray, state.params)
    for i in range(3):
        state, metrics = step(state, _batch(i))
    assert step._cache_size() == 1  # no retrace after the first call
    assert isinstance(state, TrainState) and int(state.step) == 3
    assert int(state.objective_state.size) == 16 + 3 * 16
    assert all(np.isfinite(float(v)) for v in metrics.values())
    changed = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params0), jax.tree.leaves(state.params))]
    assert all(changed)


def test_state_is_donated():
    state, step = _setup()
    old_params = state.params
    state, _ = step(state, _batch(0))
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(old_params))


def test_same_state_same_bits_and_keys_per_step():
    if not bit_exact():
        pytest.skip("the same bits are promised on a CPU, and on a GPU with deterministic kernels only")
    state_a, step = _setup()
    state_b, _ = _setup()
    out_a, m_a = step(state_a, _batch(0))
    out_b, m_b = step(state_b, _batch(0))
    for x, y in zip(jax.tree.leaves(out_a.params), jax.tree.leaves(out_b.params)):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    # The per-step key comes from fold_in(rng_key, step): the next step's randomness differs.
    out_a2, m_a2 = step(out_a, _batch(0))
    assert float(m_a2["loss"]) != float(m_a["loss"])


def test_chain_groups_give_the_same_step():
    """The sampler's chains run 4 at a time: the same fakes, so the same buffer and parameters."""
    (state, step), (state_g, step_g) = _setup(), _setup(presets.tutorial_sampler(4, chain_group=4))
    initial_buffer = np.asarray(state.objective_state.samples)  # the state is donated to the step
    for i in range(2):
        state, metrics = step(state, _batch(i))
        state_g, metrics_g = step_g(state_g, _batch(i))
    # Float reassociation only: exact on a CPU; on a GPU XLA fuses a group's ops differently
    # (measured on an H200: parameters apart by up to 3.7e-5 after two steps, samples likewise).
    tol = 1e-6 if jax.default_backend() == "cpu" else 1e-4
    np.testing.assert_allclose(state_g.objective_state.samples, state.objective_state.samples, rtol=1e-5,
                               atol=max(tol, 1e-5))
    for a, b in zip(jax.tree.leaves(state_g.params), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(metrics_g["loss"], metrics["loss"], rtol=1e-4)
    assert float(np.abs(np.asarray(state.objective_state.samples) - initial_buffer).max()) > 1e-3  # fakes pushed


def test_other_kernels_plug_in():
    for sampler in (langevin.spec(4, 1e-3, bounds=(-1.0, 1.0)),):
        state, step = _setup(sampler)
        state, metrics = step(state, _batch(0))
        assert np.isfinite(float(metrics["loss"])) and "sampler_acceptance" not in metrics
    from ebm_jax.samplers import mala

    state, step = _setup(mala.spec(2, 1e-4))
    state, metrics = step(state, _batch(0))
    assert 0.0 <= float(metrics["sampler_acceptance"]) <= 1.0


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="step_size"):
        presets.tutorial_sampler(step_size=-10.0)
    with pytest.raises(ValueError, match="num_steps"):
        presets.tutorial_sampler(0)
    with pytest.raises(ValueError, match="reinit_prob"):
        presets.tutorial_objective(reinit_prob=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        _setup(capacity=8)


def test_every_objective_sharded_matches_single_device():
    """Eight fake CPU devices, a Mesh with a data axis: for every objective, one step on the mesh
    gives the parameters and objective state of one device, to float tolerance (the sharded
    program sums in a different order); the samplers under `shard_map` draw what one device
    draws (same fakes). See `sharded_vs_single.py`."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    script = os.path.join(os.path.dirname(__file__), "sharded_vs_single.py")
    out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["num_devices"] == 8
    expected = {"tutorial", "tutorial_grouped", "tutorial_mala", "replay_cd", "persistent_cd", "cd_k", "cd_k_hinge",
                "dsm", "ssm", "msdsm", "nce", "regularised", "jem", "jem_pxy"}
    assert set(result["objectives"]) == expected
    for name, run in result["objectives"].items():
        assert run["state_replicated"] and run["steps"] == [2, 2], (name, run)
        assert run["params_max_abs_diff"] <= 1e-5 * max(1.0, run["params_max_abs"]), (name, run)
        assert run["objective_state_max_abs_diff"] <= 1e-4, (name, run)
        for key, single in run["metrics_single"].items():
            np.testing.assert_allclose(run["metrics_sharded"][key], single, rtol=1e-4, atol=1e-5, err_msg=f"{name}/{key}")
    for name, run in result["samplers"].items():
        assert run["positions_max_abs_diff"] <= 1e-6 and run["moved"] > 1e-2 and run["positions_sharded"], (name, run)
    assert result["samplers"]["mala"]["accept_decisions_equal"]
