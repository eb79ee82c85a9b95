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


def test_ood_analysis_on_a_known_energy():
    """E(x) = mean(x): every number of the report has a closed form on fixed images."""
    import jax

    rng = np.random.default_rng(1)
    test = rng.uniform(-1, 1, (5, 28, 28, 1)).astype(np.float32)
    train = rng.uniform(-1, 1, (7, 28, 28, 1)).astype(np.float32)
    apply_fn = lambda params, x: x.reshape(len(x), -1).mean(-1) * params
    report = analysis.ood_analysis(apply_fn, 2.0, jax.random.key(0), train, test, num_noise_images=3, batch_size=4)
    energy = lambda x: 2.0 * x.reshape(len(x), -1).mean(-1)
    np.testing.assert_allclose(report["mean_energy"]["train_images"], energy(train).mean(), rtol=1e-5)
    np.testing.assert_allclose(report["mean_energy"]["test_images"], energy(test).mean(), rtol=1e-5)
    flipped = report["edits_of_test_images"]["flipped"]  # a flip keeps the mean of every image
    np.testing.assert_allclose(flipped["mean_change"], 0.0, atol=1e-6)
    shrunk = report["edits_of_test_images"]["shrunk"]
    e_shrunk = energy(analysis.shrunk(test))
    np.testing.assert_allclose(shrunk["mean_energy_after"], e_shrunk.mean(), rtol=1e-5)
    assert shrunk["share_higher_after"] == np.mean(e_shrunk > energy(test))
    one = report["one_test_image"]
    np.testing.assert_allclose([one["energy"], one["energy_shrunk"]], [energy(test)[0], e_shrunk[0]], rtol=1e-5)
    assert report["num_images"] == {"noise": 3, "train": 7, "test": 5}
