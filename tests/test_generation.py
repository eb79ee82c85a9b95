"""Steered generation: inpainting keeps what is observed, denoising follows its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import compose, generation
from ebm_jax.samplers import langevin, mala


def _gaussian(mean):
    return lambda x: 0.5 * jnp.sum(jnp.square(x - mean))


def test_inpainting_never_changes_an_observed_pixel():
    images = jax.random.uniform(jax.random.key(0), (6, 8, 8, 1), minval=-1.0, maxval=1.0)
    mask = np.zeros((8, 8, 1), bool)
    mask[:4] = True                                            # the upper half observed
    out = generation.inpaint(jax.random.key(1), langevin.spec(30, 0.05, bounds=(-1.0, 1.0)), _gaussian(0.3),
                             images, mask)
    np.testing.assert_array_equal(out[:, :4], images[:, :4])  # bit for bit
    assert not np.allclose(out[:, 4:], images[:, 4:])
    assert float(jnp.min(out)) >= -1 and float(jnp.max(out)) <= 1
    # Noiseless steps of size 0.5 halve the free pixels' distance to the energy's minimum 0.3 each
    # time: after 40 steps they sit on it, while the observed half still never moves.
    out = generation.inpaint(jax.random.key(1), langevin.spec(40, 0.5, noise_scale=0.0), _gaussian(0.3), images, mask)
    np.testing.assert_allclose(out[:, 4:], 0.3, atol=1e-6)
    np.testing.assert_array_equal(out[:, :4], images[:, :4])
    with pytest.raises(ValueError, match="mask"):
        generation.inpaint(jax.random.key(1), langevin.spec(2, 0.05), _gaussian(0.0), images, mask[:, :, 0])


def test_denoise_is_gradient_descent_with_its_closed_form():
    """E(x) = |x - m|^2 / 2: each step x <- x - s (x - m), so x_t = m + (1 - s)^t (x_0 - m)."""
    m, s, t = 0.2, 0.1, 7
    x0 = jax.random.uniform(jax.random.key(0), (3, 5), minval=-1.0, maxval=1.0)
    out = generation.denoise(_gaussian(m), x0, t, s)
    np.testing.assert_allclose(out, m + (1 - s) ** t * (x0 - m), rtol=1e-5, atol=1e-6)


def test_psnr_by_hand():
    clean = jnp.zeros((2, 4))
    estimate = jnp.stack([jnp.full(4, 0.1), jnp.full(4, 0.2)])   # MSE 0.01 and 0.04
    np.testing.assert_allclose(generation.psnr(clean, estimate), [10 * np.log10(400), 10 * np.log10(100)], rtol=1e-6)


def test_from_noise_under_a_disjunction_finds_both_modes_in_proportion():
    """OR of two unit Gaussians with equal normalisers: half the chains in each mode (MALA,
    long enough to mix within a mode; the starts split by the sign of the uniform draw)."""
    left, right = _gaussian(jnp.array([-3.0, 0.0])), _gaussian(jnp.array([3.0, 0.0]))
    out = generation.from_noise(jax.random.key(0), mala.spec(200, 0.5), compose.disjunction(left, right), 2000, (2,),
                                bounds=(-6.0, 6.0))
    share = float(jnp.mean(out[:, 0] > 0))
    # Binomial standard error of the share: sqrt(0.25 / 2000) = 0.011.
    assert abs(share - 0.5) < 4 * 0.0112
    np.testing.assert_allclose(float(jnp.std(out[out[:, 0] > 0][:, 1])), 1.0, atol=0.1)


def test_inpainting_starts_the_free_entries_where_asked():
    images = jnp.zeros((2, 4, 4, 1))
    mask = np.zeros((4, 4, 1), bool)
    mask[:, :2] = True
    start = jnp.full((4, 4, 1), 0.7)
    # A single step of size 1e-9 without noise leaves the free entries at their start.
    out = generation.inpaint(jax.random.key(0), langevin.spec(1, 1e-9, noise_scale=0.0), _gaussian(0.0), images, mask,
                             start=start)
    np.testing.assert_allclose(out[:, :, 2:], 0.7, atol=1e-6)
    np.testing.assert_array_equal(out[:, :, :2], 0.0)
