import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import presets
from ebm_jax.samplers import langevin, loop, run_chain, run_chains, sample, uniform_starts

TUTORIAL = presets.tutorial_sampler().params  # step 10, noise 0.005, gradient clamp 0.03, bounds [-1, 1]

# Per coordinate at the tutorial's start below: gradient pushes up past the bound (clamped
# gradient, clamped position); clamped gradient inside; small gradient reaching the bound;
# small gradient inside.
A = np.array([0.2, 3.0, 0.5, 0.1], np.float64)
B = np.array([-0.5, 0.0, -0.5, 0.01], np.float64)


def quadratic_energy(x):
    return 0.5 * jnp.sum(A * x**2) + jnp.sum(B * x)


def test_two_tutorial_steps_by_hand():
    """Two steps of the tutorial's loop against a numpy computation of the same moves.

    The start and energy are chosen so that the steps exercise the gradient clamp (|grad| > 0.03
    on some coordinates, not on others) and the position clamp at the upper bound.
    """
    kernel = langevin.build_kernel("noise_first")
    params = TUTORIAL
    x0 = jnp.array([0.9, 0.3, 0.98, -0.2], jnp.float32)
    keys = jax.random.split(jax.random.key(7), 2)

    # The noise each step draws, read off the kernel with a zero energy (no gradient move).
    def noise_of(key, x):
        moved, _ = kernel(key, langevin.init(x), lambda y: 0.0 * jnp.sum(y), **params)
        return np.asarray(moved.position, np.float64) - np.asarray(x, np.float64)

    state = langevin.init(x0)
    x = np.asarray(x0, np.float64)
    clipped = []
    for key in keys:
        z = noise_of(key, state.position)
        assert 0 < np.abs(z).max() < 0.03  # noise of scale 0.005, no clamping at these points
        x = np.clip(x + z, -1, 1)
        energy_at_noisy = 0.5 * np.sum(A * x**2) + np.sum(B * x)
        grad = A * x + B
        clipped.append(np.abs(grad) > 0.03)
        x = np.clip(x - 10.0 * np.clip(grad, -0.03, 0.03), -1, 1)
        state, info = kernel(key, state, quadratic_energy, **params)
        np.testing.assert_allclose(state.position, x, atol=2e-6)
        np.testing.assert_allclose(info.energy, energy_at_noisy, rtol=1e-5)
    clipped = np.array(clipped)
    assert clipped.any() and not clipped.all()  # both branches of the gradient clamp were used
    assert np.asarray(state.position)[0] == 1.0 and np.asarray(state.position)[2] == 1.0


def test_textbook_form_single_step():
    kernel = langevin.build_kernel("grad_first")
    x0 = jnp.array([0.5, -1.0, 2.0, 0.0], jnp.float32)
    key = jax.random.key(3)
    zero_step, _ = kernel(key, langevin.init(x0), lambda y: 0.0 * jnp.sum(y), step_size=0.01)
    z = np.asarray(zero_step.position) - np.asarray(x0)  # sqrt(2 * 0.01) * N(0, 1)
    state, info = kernel(key, langevin.init(x0), quadratic_energy, step_size=0.01)
    expected = np.asarray(x0) - 0.01 * (A * np.asarray(x0) + B) + z
    np.testing.assert_allclose(state.position, expected, atol=1e-6)
    np.testing.assert_allclose(info.energy, quadratic_energy(x0), rtol=1e-6)
    assert np.std(z / np.sqrt(0.02)) > 0  # the noise is there


@pytest.mark.parametrize("step_over_var", [0.5, 1.0])
def test_textbook_stationary_variance_of_gaussian(step_over_var):
    """x' = x - h x / s^2 + sqrt(2h) z is an AR(1) chain with stationary variance
    s^2 / (1 - h / (2 s^2)) (not s^2: the discretisation bias). Checked on 20,000 independent
    chains; the tolerance is 5 standard errors of a sample variance, var * sqrt(2 / (n - 1))."""
    s2 = 2.0
    h = step_over_var * s2 / 2  # h / s^2 in {0.25, 0.5}: the bias is 14 % or 33 %
    exact = s2 / (1 - h / (2 * s2))
    n_chains, n_steps = 20_000, 200  # contraction |1 - h/s^2| <= 0.75: 0.75^200 ~ 1e-25
    sampler = langevin.langevin(lambda x: 0.5 * x**2 / s2, step_size=h)
    states = jax.vmap(sampler.init)(jnp.full((n_chains,), 3.0))
    final, _, _ = jax.jit(lambda k, s: run_chains(k, sampler.step, s, n_steps))(jax.random.key(0), states)
    x = np.asarray(final.position, np.float64)
    se_var = exact * np.sqrt(2.0 / (n_chains - 1))
    assert abs(x.var(ddof=1) - exact) < 5 * se_var
    assert abs(x.mean()) < 5 * np.sqrt(exact / n_chains)
    assert abs(s2 - exact) > 10 * se_var  # the test can tell the biased answer from s^2


def test_jit_vmap_and_determinism():
    kernel = langevin.build_kernel("noise_first")
    params = TUTORIAL
    xs = jax.random.uniform(jax.random.key(0), (5, 4), minval=-1, maxval=1)
    keys = jax.random.split(jax.random.key(1), 5)
    step = lambda k, x: kernel(k, langevin.init(x), quadratic_energy, **params)
    batched, _ = jax.vmap(step)(keys, xs)
    for i in range(5):
        single, _ = step(keys[i], xs[i])
        np.testing.assert_allclose(batched.position[i], single.position, rtol=1e-6, atol=1e-7)
    jitted, _ = jax.jit(step)(keys[0], xs[0])
    eager, _ = step(keys[0], xs[0])
    np.testing.assert_allclose(jitted.position, eager.position, rtol=1e-6, atol=1e-7)
    again, _ = jax.jit(step)(keys[0], xs[0])
    assert np.array_equal(np.asarray(again.position), np.asarray(jitted.position))


def test_run_chain_thinning_matches_manual_loop():
    sampler = langevin.langevin(quadratic_energy, step_size=0.05)
    key = jax.random.key(2)
    final, trace, infos = run_chain(key, sampler.step, sampler.init(jnp.ones(4)), 12, thin=4)
    assert trace.position.shape == (3, 4) and infos.energy.shape == (3,)  # the kept steps' infos only
    _, _, every_info = run_chain(key, sampler.step, sampler.init(jnp.ones(4)), 12)
    np.testing.assert_allclose(infos.energy, every_info.energy[3::4], rtol=1e-6)
    state = sampler.init(jnp.ones(4))
    # Jitted scan vs eager steps: float32 rounding of O(1) positions, so a few ulps of 1 absolute
    # (a coordinate can pass near 0, where a purely relative tolerance means nothing).
    tol = dict(rtol=1e-6, atol=1e-6)
    for i, k in enumerate(jax.random.split(key, 12)):
        state, _ = sampler.step(k, state)
        if (i + 1) % 4 == 0:
            np.testing.assert_allclose(trace.position[(i + 1) // 4 - 1], state.position, **tol)
    np.testing.assert_allclose(final.position, state.position, **tol)


@pytest.mark.parametrize("thin", [None, 4, 6])
def test_draws_made_ahead_match_the_kernel(thin, monkeypatch):
    """`run_chains(..., draw=langevin.draw)` with `build_move` is the kernel's chain: the same
    draws from the same keys, made a block ahead. Blocks of 2 (a byte limit of two steps'
    draws) and of whole intervals; both orders; final state, trace and infos."""
    xs = jax.random.uniform(jax.random.key(0), (5, 4), minval=-1, maxval=1)
    params = TUTORIAL
    for order in langevin.ORDERS:
        kernel, move = langevin.build_kernel(order), langevin.build_move(order)
        by_key = run_chains(jax.random.key(3), lambda k, s: kernel(k, s, quadratic_energy, **params),
                            langevin.init(xs), 12, thin)
        for block_bytes in (2 * xs.size * 4, 2**30):
            monkeypatch.setattr(loop, "_DRAW_BLOCK_BYTES", block_bytes)
            ahead = run_chains(jax.random.key(3), lambda z, s: move(z, s, quadratic_energy, **params),
                               langevin.init(xs), 12, thin, draw=langevin.draw)
            assert jax.tree.structure(ahead) == jax.tree.structure(by_key)
            for a, b in zip(jax.tree.leaves(ahead), jax.tree.leaves(by_key)):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        assert np.abs(np.asarray(by_key[0].position) - np.asarray(xs)).max() > 1e-3  # it moved


def test_draw_block_sizes():
    """The block is the largest divisor of the interval within the step and byte limits."""
    state = langevin.init(jnp.zeros((64, 784)))  # 200704 bytes of draws per step
    assert loop._draw_block(langevin.draw, state, 60) == 15
    assert loop._draw_block(langevin.draw, state, 7) == 7
    assert loop._draw_block(langevin.draw, state, 17) == 1
    big = langevin.init(jnp.zeros((1024, 784)))  # 3.2 MB per step: 5 within 16 MiB
    assert loop._draw_block(langevin.draw, big, 60) == 5


@pytest.mark.parametrize("thin", [None, 4])
def test_chain_groups_change_nothing(thin):
    """`run_chains(..., chain_group=g)` runs the chains g at a time (the largest divisor of their
    number within g) with the keys they get all at once: the same final states, trace and infos,
    by key and with draws made ahead."""
    xs = jax.random.uniform(jax.random.key(0), (12, 4), minval=-1, maxval=1)
    params = TUTORIAL
    kernel, move = langevin.build_kernel("noise_first"), langevin.build_move("noise_first")
    paths = ((None, lambda k, s: kernel(k, s, quadratic_energy, **params)),
             (langevin.draw, lambda z, s: move(z, s, quadratic_energy, **params)))
    for draw, step in paths:
        whole = run_chains(jax.random.key(3), step, langevin.init(xs), 8, thin, draw=draw)
        for group in (1, 4, 5, 12, 50):  # 5 -> groups of 4; 12 and 50 -> all at once
            grouped = run_chains(jax.random.key(3), step, langevin.init(xs), 8, thin, draw=draw, chain_group=group)
            assert jax.tree.structure(grouped) == jax.tree.structure(whole)
            for a, b in zip(jax.tree.leaves(grouped), jax.tree.leaves(whole)):
                assert a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        assert np.abs(np.asarray(whole[0].position) - np.asarray(xs)).max() > 1e-3  # it moved


def test_sample_from_noise_in_groups_and_by_key():
    """The runner with a spec: chain groups and draws made ahead change no number."""
    starts = uniform_starts(jax.random.key(5), 6, (4,))
    run = lambda group, ahead: sample(jax.random.key(4), presets.tutorial_sampler(10, chain_group=group),
                                      quadratic_energy, starts, thin=5, draw_ahead=ahead)
    whole = run(None, True)
    assert whole[1].position.shape == (2, 6, 4) and whole[2].energy.shape == (2, 6)
    for other in (run(2, True), run(None, False), run(4, False)):
        for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(whole)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(whole[0].position) - np.asarray(starts)).max() > 1e-3


def test_samplers_build_inside_jit():
    """Parameter checks look at concrete values only: a sampler built with a traced step size."""
    from ebm_jax.samplers import hmc, mala

    energy_fn = lambda x: 0.5 * jnp.sum(x**2)
    for build in (lambda s: hmc.hmc(energy_fn, s, 10), lambda s: mala.mala(energy_fn, s),
                  lambda s: langevin.langevin(energy_fn, s)):
        def run(s, x):
            algorithm = build(s)
            state, _ = algorithm.step(jax.random.key(0), algorithm.init(x))
            return state.position

        out = jax.jit(run)(0.1, jnp.zeros(2))
        np.testing.assert_allclose(out, run(0.1, jnp.zeros(2)), rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="step_size"):
            run(-0.1, jnp.zeros(2))  # concrete values are still checked


def test_chain_group_sizes_and_bad_values():
    assert [loop._group_size(12, g) for g in (None, 1, 4, 5, 7, 12, 64)] == [12, 1, 4, 4, 6, 12, 12]
    assert loop._group_size(13, 4) == 1  # a prime number of chains: one at a time
    for bad in (0, -3):
        with pytest.raises(ValueError, match="chain_group"):
            loop._group_size(12, bad)


def test_pytree_position():
    sampler = langevin.langevin(lambda p: jnp.sum(p["a"] ** 2) + p["b"] ** 2, step_size=0.01)
    state, info = sampler.step(jax.random.key(0), sampler.init({"a": jnp.ones(3), "b": jnp.array(2.0)}))
    assert state.position["a"].shape == (3,) and state.position["b"].shape == ()
    np.testing.assert_allclose(info.grad_norm, np.sqrt(3 * 4.0 + 16.0), rtol=1e-6)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="step_size"):
        langevin.langevin(quadratic_energy, step_size=-1.0)
    with pytest.raises(ValueError, match="grad_clip"):
        langevin.langevin(quadratic_energy, step_size=1.0, grad_clip=0.0)
    with pytest.raises(ValueError, match="bounds"):
        langevin.langevin(quadratic_energy, step_size=1.0, bounds=(1.0, -1.0))
    with pytest.raises(ValueError, match="order"):
        langevin.build_kernel("sideways")
    with pytest.raises(ValueError, match="thin"):
        run_chain(jax.random.key(0), lambda k, s: (s, None), jnp.zeros(2), 10, thin=3)
