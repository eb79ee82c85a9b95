import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from ebm_jax.energies import TutorialCNN
from ebm_jax.samplers import langevin
from ebm_jax.train import TrainState, create_train_state, make_train_step, tutorial_optimizer

MODEL = TutorialCNN(features=8)


def _setup(batch_size=16, capacity=64, **kwargs):
    optimizer = tutorial_optimizer(steps_per_epoch=10)
    state = create_train_state(jax.random.key(0), MODEL, optimizer, (28, 28, 1), batch_size, capacity)
    step = make_train_step(MODEL.apply, optimizer, num_mcmc_steps=kwargs.pop("num_mcmc_steps", 4), **kwargs)
    return state, step


def _batch(i, n=16):
    return jax.random.uniform(jax.random.key(100 + i), (n, 28, 28, 1), minval=-1, maxval=1)


def test_step_compiles_once_and_updates_state():
    state, step = _setup()
    params0 = jax.tree.map(np.asarray, state.params)
    for i in range(3):
        state, metrics = step(state, _batch(i))
    assert step._cache_size() == 1  # no retrace after the first call
    assert isinstance(state, TrainState) and int(state.step) == 3
    assert int(state.buffer.size) == 16 + 3 * 16
    assert all(np.isfinite(float(v)) for v in metrics.values())
    changed = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params0), jax.tree.leaves(state.params))]
    assert all(changed)


def test_state_is_donated():
    state, step = _setup()
    old_params = state.params
    state, _ = step(state, _batch(0))
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(old_params))


def test_same_state_same_bits_and_keys_per_step():
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
    (state, step), (state_g, step_g) = _setup(), _setup(sampler_chain_group=4)
    initial_buffer = np.asarray(state.buffer.samples)  # the state is donated to the step
    for i in range(2):
        state, metrics = step(state, _batch(i))
        state_g, metrics_g = step_g(state_g, _batch(i))
    np.testing.assert_allclose(state_g.buffer.samples, state.buffer.samples, rtol=1e-6, atol=1e-6)
    for a, b in zip(jax.tree.leaves(state_g.params), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(metrics_g["loss"], metrics["loss"], rtol=1e-5)
    assert float(np.abs(np.asarray(state.buffer.samples) - initial_buffer).max()) > 1e-3  # fakes were pushed


def test_other_kernel_plugs_in():
    kernel = langevin.build_kernel("grad_first")
    state, step = _setup(sampler_kernel=kernel, sampler_params=dict(step_size=1e-3, bounds=(-1.0, 1.0)))
    state, metrics = step(state, _batch(0))
    assert np.isfinite(float(metrics["loss"]))


def test_bad_settings_raise():
    optimizer = tutorial_optimizer(10)
    with pytest.raises(ValueError, match="step_size"):
        make_train_step(MODEL.apply, optimizer, sampler_params=dict(step_size=-10.0))
    with pytest.raises(ValueError, match="num_mcmc_steps"):
        make_train_step(MODEL.apply, optimizer, num_mcmc_steps=0)
    with pytest.raises(ValueError, match="reinit_prob"):
        make_train_step(MODEL.apply, optimizer, reinit_prob=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        create_train_state(jax.random.key(0), MODEL, optimizer, (28, 28, 1), 128, buffer_capacity=64)


def test_sharded_step_matches_single_device():
    """Eight fake CPU devices, a Mesh with a data axis: same parameters as one device to float
    tolerance (the sharded program sums in a different order). The samplers alone (Langevin with
    its kernel and with draws made ahead, MALA, both also with chains run in groups) under
    `shard_map` draw what one device draws."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    script = os.path.join(os.path.dirname(__file__), "sharded_vs_single.py")
    out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["num_devices"] == 8
    assert result["buffer_replicated"] and result["params_replicated"]
    for name in ("langevin", "langevin_ahead", "mala", "langevin_grouped", "mala_grouped"):
        run = result["sampler"][name]
        assert run["positions_max_abs_diff"] <= 1e-6 and run["moved"] > 1e-2 and run["positions_sharded"], run
    # draws made ahead, sharded, against the kernel drawing from its key on one device
    assert result["sampler"]["langevin_ahead"]["vs_key_max_abs_diff"] <= 1e-6
    # chains run in groups of 2 per device: the same positions and infos as all at once
    for name in ("langevin_grouped", "mala_grouped"):
        assert result["sampler"][name]["vs_ungrouped_max_abs_diff"] <= 1e-6, result["sampler"][name]
    assert result["sampler"]["mala_grouped"]["accept_decisions_equal"]
    mala_run = result["sampler"]["mala"]
    assert mala_run["info_shape"] == [4, 32] and mala_run["accept_decisions_equal"]
    assert mala_run["acceptance_rate_max_abs_diff"] <= 1e-3 and mala_run["acceptance"] < 1.0
    assert result["steps"] == [3, 3]
    assert result["params_max_abs_diff"] <= 1e-5 * max(1.0, result["params_max_abs"])
    assert result["buffer_max_abs_diff"] <= 1e-4
    np.testing.assert_allclose(result["loss_sharded"], result["loss_single"], rtol=1e-4, atol=1e-6)
