import gzip
import os
import shutil
import time

import numpy as np
import pytest

from ebm_jax import data
from ebm_jax.data import batching
from ebm_jax.data.idx import IdxFormatError, parse_idx, read_idx, write_idx


def test_idx_roundtrip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        write_idx(tmp_path / name, images)
        np.testing.assert_array_equal(read_idx(tmp_path / name), images)


def _write_raw(path, raw, compress=False):
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(raw)
    return str(path)


def _valid_bytes():
    return bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(2 * 784)


def test_idx_errors_name_the_file(tmp_path):
    good = _valid_bytes()
    cases = {
        "bad_magic": (b"\x12\x34" + good[2:], "bad magic"),
        "truncated": (good[:-10], "truncated"),
        "trailing": (good + b"\x00", "trailing"),
        "short_header": (good[:9], "truncated header"),
        "tiny": (b"\x00\x00", "too short"),
    }
    for name, (raw, message) in cases.items():
        path = _write_raw(tmp_path / name, raw)
        with pytest.raises(IdxFormatError, match=message) as err:
            read_idx(path)
        assert path in str(err.value)


def test_corrupted_and_truncated_gzip(tmp_path):
    path = _write_raw(tmp_path / "x-idx3-ubyte.gz", _valid_bytes(), compress=True)
    raw = open(path, "rb").read()
    _write_raw(tmp_path / "cut.gz", raw[: len(raw) // 2])
    with pytest.raises(IdxFormatError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz")
    _write_raw(tmp_path / "garbage.gz", b"\x1f\x8b" + b"nonsense" * 20)
    with pytest.raises(IdxFormatError, match="garbage.gz"):
        read_idx(tmp_path / "garbage.gz")
    with pytest.raises(FileNotFoundError, match="missing"):
        read_idx(tmp_path / "missing.gz")
    with pytest.raises(IdxFormatError, match="dimensions"):
        parse_idx(_valid_bytes(), "x", expected_ndim=1)


def test_load_fixture(mnist_tiny_dir):
    ds = data.load("mnist", mnist_tiny_dir)
    assert ds.train.images.shape == (300, 28, 28) and ds.test.images.shape == (100, 28, 28)
    assert np.bincount(ds.train.labels).tolist() == [30] * 10
    assert "train 300" in ds.source
    x = data.to_float_images(ds.train.images)
    assert x.shape == (300, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0


def test_env_var_and_subfolder(tmp_path, monkeypatch, mnist_tiny_dir):
    shutil.copytree(mnist_tiny_dir, tmp_path / "mnist")
    monkeypatch.setenv(data.mnist.ENV_VAR, str(tmp_path))
    ds = data.load("mnist", use_tfds=False, download=False, cache_dir=str(tmp_path / "cache"))
    assert str(tmp_path / "mnist") in ds.source


def test_missing_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="does not exist") as err:
        data.load("mnist", str(tmp_path / "nope"))
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value)
    os.makedirs(tmp_path / "partial")
    with pytest.raises(data.DataNotFoundError, match="lacks"):
        data.load("mnist", str(tmp_path / "partial"))


def test_offline_failure_is_fast_and_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(data.mnist.ENV_VAR, raising=False)
    monkeypatch.setattr(data.mnist, "MIRRORS", {"mnist": ("http://127.0.0.1:9/",), "fashion_mnist": ()})
    tic = time.perf_counter()
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("mnist", use_tfds=False, cache_dir=str(tmp_path))
    assert time.perf_counter() - tic < 10
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path) in message


def test_download_checks_md5(tmp_path, monkeypatch, mnist_tiny_dir):
    """A mirror serving files whose md5 is not the official one is rejected."""
    monkeypatch.setattr(data.mnist, "MIRRORS", {"mnist": ("file://" + mnist_tiny_dir + "/",)})
    with pytest.raises(OSError, match="md5"):
        data.mnist.download_files("mnist", str(tmp_path))
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".gz")]


def test_wrong_image_shape_is_reported(tmp_path):
    for name in data.mnist.FILES.values():
        if "images" in name:
            write_idx(tmp_path / name, np.zeros((4, 32, 32), np.uint8))
        else:
            write_idx(tmp_path / name, np.zeros((4,), np.uint8))
    with pytest.raises(ValueError, match="expected 28x28"):
        data.load("mnist", str(tmp_path))


def test_batching_is_seeded_and_handles_partial_batches():
    a = batching.train_batch_indices(10, 3, seed=1, epoch=0)
    assert a.shape == (3, 3) and len(set(a.ravel())) == 9
    np.testing.assert_array_equal(a, batching.train_batch_indices(10, 3, seed=1, epoch=0))
    assert not np.array_equal(a, batching.train_batch_indices(10, 3, seed=1, epoch=1))
    batches = list(batching.padded_batches(np.arange(10), 4))
    assert [valid.sum() for _, valid in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[v] for b, v in batches]), np.arange(10))
    with pytest.raises(ValueError, match="larger than the data"):
        batching.steps_per_epoch(10, 11)


def test_tfds_source_when_installed(monkeypatch, tmp_path):
    """With tensorflow-datasets importable (a stand-in module here), `load` uses it when no
    local files are found, and converts its [N, 28, 28, 1] arrays."""
    import sys
    import types

    fake = types.ModuleType("tensorflow_datasets")
    rng = np.random.default_rng(0)
    sizes = {"train": 12, "test": 5}
    fake.load = lambda name, split, batch_size: {
        "image": rng.integers(0, 256, (sizes[split], 28, 28, 1), dtype=np.uint8),
        "label": rng.integers(0, 10, (sizes[split],)),
    }
    fake.as_numpy = lambda x: x
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    monkeypatch.delenv(data.mnist.ENV_VAR, raising=False)
    ds = data.load("mnist", download=False, cache_dir=str(tmp_path))
    assert ds.source == "tensorflow-datasets mnist"
    assert ds.train.images.shape == (12, 28, 28) and ds.test.labels.dtype == np.uint8
