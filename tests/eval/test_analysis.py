"""The tutorial's image edits."""

import numpy as np

from ebm_jax.eval import analysis


def test_shrunk_is_half_size_in_the_bottom_right_quadrant():
    images = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    out = analysis.shrunk(images)
    np.testing.assert_array_equal(out[:, 14:, 14:], images[:, ::2, ::2])
    assert np.all(out[:, :14] == -1) and np.all(out[:, :, :14] == -1)


def test_flipped_reverses_both_axes():
    images = np.arange(2 * 4 * 4).reshape(2, 4, 4, 1).astype(np.float32)
    out = analysis.flipped(images)
    np.testing.assert_array_equal(out[:, 0, 0], images[:, 3, 3])
    np.testing.assert_array_equal(analysis.flipped(out), images)
