"""The shipped energies: they load with one call, score like the run they come from, and are
in the package data of a wheel."""

import fnmatch
import os
import tomllib

import jax
import numpy as np

import ebm_jax
from ebm_jax import data, pretrained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mnist_tutorial_gives_noise_a_far_higher_energy_than_test_digits(mnist_tiny_dir):
    model, params = pretrained.load("mnist_tutorial")
    assert sum(np.size(v) for v in jax.tree_util.tree_leaves(params)) == pretrained.info("mnist_tutorial")["num_params"]
    digits = data.to_float_images(data.load("mnist", mnist_tiny_dir).test.images)  # 100 real test digits
    noise = jax.random.uniform(jax.random.key(0), digits.shape, minval=-1.0, maxval=1.0)
    e_digits = np.asarray(model.apply(params, digits))
    e_noise = np.asarray(model.apply(params, noise))
    assert e_digits.shape == e_noise.shape == (len(digits),)
    # Every noise image above every digit, and by a margin of many spreads of the digits' energies.
    assert e_noise.min() > e_digits.max()
    assert e_noise.mean() - e_digits.mean() > 10 * e_digits.std()


def test_unknown_name_is_a_clear_error():
    try:
        pretrained.load("cifar10_resnet")
    except ValueError as e:
        assert "mnist_tutorial" in str(e)
    else:
        raise AssertionError("no error")


def test_npz_round_trip(tmp_path):
    variables = {"params": {"conv": {"kernel": np.arange(6.0).reshape(2, 3), "bias": np.ones(3, np.float32)}}}
    pretrained.save_npz(str(tmp_path / "w.npz"), variables, {"note": "x"})
    restored, info = pretrained.read_npz(str(tmp_path / "w.npz"))
    assert info == {"note": "x"}
    np.testing.assert_array_equal(restored["params"]["conv"]["kernel"], variables["params"]["conv"]["kernel"])


def test_every_weights_file_is_package_data():
    """A fresh (non-editable) install gets exactly the files pyproject's package-data names."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    package_root = os.path.dirname(ebm_jax.__file__)
    found = []
    for folder, _, files in os.walk(package_root):
        for name in files:
            if name.endswith(".npz"):
                found.append(os.path.relpath(os.path.join(folder, name), os.path.dirname(package_root)))
    assert any(path.endswith("pretrained/mnist_tutorial.npz") for path in found)
    for path in found:
        covered = False
        for package, patterns in package_data.items():
            prefix = package.replace(".", os.sep) + os.sep
            if path.startswith(prefix):
                covered |= any(fnmatch.fnmatch(path[len(prefix):], p) for p in patterns)
        assert covered, f"{path} is not in [tool.setuptools.package-data]"
