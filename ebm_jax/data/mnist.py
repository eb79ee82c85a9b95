"""MNIST and Fashion-MNIST from wherever they can be found, without surprises offline.

Where `load` looks, in order (the first that has all four files wins):
  1. `data_dir`, when given (a missing folder or file is an error, never a silent fallback);
  2. `$EBM_JAX_DATA_DIR` (the files directly in it, or in `$EBM_JAX_DATA_DIR/<dataset>`);
  3. Debian's `/usr/share/datasets/fashion-mnist` (package dataset-fashion-mnist), Fashion only;
  4. the download cache `~/.cache/ebm_jax/<dataset>` (or `$XDG_CACHE_HOME`);
  5. tensorflow-datasets, when it is installed and its data is reachable (`use_tfds=True`);
  6. a download from the official mirrors (md5-checked, 10 s timeout, one try per mirror).
If all fail, `DataNotFoundError` says which four files to put where, within seconds.

The four files per dataset keep their official names, gzip-compressed or not:
  train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz  t10k-images-idx3-ubyte.gz
  t10k-labels-idx1-ubyte.gz
"""

import hashlib
import os
import shutil
import tempfile
import urllib.request
from typing import NamedTuple, Optional

import numpy as np

from ebm_jax.data.idx import read_idx

DATASETS = ("mnist", "fashion_mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
ENV_VAR = "EBM_JAX_DATA_DIR"
DEBIAN_DIRS = {"fashion_mnist": "/usr/share/datasets/fashion-mnist"}
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
# md5 of the official gzip files (checked only for downloads: local copies may be recompressed).
MD5 = {
    "mnist": {
        "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
        "test_images": "9fb629c4189551a2d022fa330f9573f3",
        "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
        "test_images": "bef4ecab320f06d8554ea6380940ec79",
        "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
DOWNLOAD_TIMEOUT_S = 10.0


class DataNotFoundError(FileNotFoundError):
    """No source had the data; the message says which files to put where."""


class Split(NamedTuple):
    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray  # uint8 [N]


class Dataset(NamedTuple):
    train: Split
    test: Split
    source: str  # where the data came from, for logs and metrics.json


def load(
    dataset: str = "mnist",
    data_dir: Optional[str] = None,
    download: bool = True,
    use_tfds: bool = True,
    cache_dir: Optional[str] = None,
) -> Dataset:
    """Loads `dataset` ("mnist" or "fashion_mnist") from the first source that has it."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise DataNotFoundError(f"--data-dir {data_dir!r} does not exist or is not a folder.\n" + _help(dataset, data_dir))
        folder = _complete_folder(data_dir, dataset)
        if folder is None:
            raise DataNotFoundError(f"{data_dir!r} lacks some of the {dataset} files.\n" + _help(dataset, data_dir))
        return _read_folder(folder, dataset)

    cache = os.path.join(cache_dir or default_cache_dir(), dataset)
    for candidate in (os.environ.get(ENV_VAR), DEBIAN_DIRS.get(dataset), cache):
        folder = _complete_folder(candidate, dataset) if candidate else None
        if folder is not None:
            return _read_folder(folder, dataset)
    tfds_error = None
    if use_tfds:
        try:
            return load_tfds(dataset)
        except Exception as e:  # tfds missing, no TensorFlow, or no network: try the next source
            tfds_error = f"{type(e).__name__}: {e}"
    download_error = None
    if download:
        try:
            return _read_folder(download_files(dataset, cache), dataset)
        except OSError as e:
            download_error = str(e)
    details = "".join(
        f"\n  {what}: {err.splitlines()[0][:300]}"
        for what, err in (("tensorflow-datasets", tfds_error), ("download", download_error))
        if err
    )
    raise DataNotFoundError(f"could not find {dataset} anywhere.{details}\n" + _help(dataset, cache))


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ebm_jax")


def download_files(dataset: str, dest: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> str:
    """Downloads the four files into `dest` (md5-checked, atomically renamed); returns `dest`.

    Each file is tried once per mirror with a short timeout, so an offline machine fails fast.
    """
    os.makedirs(dest, exist_ok=True)
    for key, name in FILES.items():
        target = os.path.join(dest, name)
        if os.path.isfile(target) and _md5(target) == MD5[dataset][key]:
            continue
        errors = []
        for mirror in MIRRORS[dataset]:
            try:
                _fetch(mirror + name, target, MD5[dataset][key], timeout)
                break
            except OSError as e:
                errors.append(f"{mirror + name}: {e}")
        else:
            raise OSError("download failed: " + "; ".join(errors))
    return dest


def load_tfds(dataset: str) -> Dataset:
    """Loads through tensorflow-datasets (needs tfds and TensorFlow; downloads if it can)."""
    import tensorflow_datasets as tfds  # optional extra: pip install ebm_jax[tfds]

    splits = {}
    for split in ("train", "test"):
        data = tfds.as_numpy(tfds.load(dataset, split=split, batch_size=-1))
        splits[split] = Split(np.asarray(data["image"])[..., 0].astype(np.uint8), np.asarray(data["label"]).astype(np.uint8))
    return Dataset(splits["train"], splits["test"], f"tensorflow-datasets {dataset}")


def to_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 `[N, 28, 28]` -> float32 `[N, 28, 28, 1]` in [-1, 1] (the tutorial's Normalize(0.5, 0.5))."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    return (images.astype(np.float32) / 127.5 - 1.0)[..., None]


def binarize(images: np.ndarray, seed: int, stream: int = 0) -> np.ndarray:
    """uint8 `[N, 28, 28]` -> float32 `[N, 784]` in {0, 1}: each pixel 1 with probability
    intensity / 255 (stochastic binarization, as in Salakhutdinov & Murray 2008), drawn from a
    generator seeded by `(seed, stream)` (one stream per split), so the same seed gives the same
    binary data on every run."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return (np.random.default_rng([seed, stream]).random(flat.shape, np.float32) < flat).astype(np.float32)


def _complete_folder(folder, dataset):
    """`folder` or `folder/<dataset>` if it holds all four files (gzip or not), else None."""
    for path in (folder, os.path.join(folder, dataset)):
        if all(_find(path, name) for name in FILES.values()):
            return path
    return None


def _find(folder, gz_name):
    for name in (gz_name, gz_name[: -len(".gz")]):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _read_folder(folder, dataset) -> Dataset:
    arrays = {key: read_idx(_find(folder, name), 3 if "images" in key else 1) for key, name in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{folder}: {split} images are {images.shape[1:]}, expected 28x28")
        if len(images) != len(labels):
            raise ValueError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    train = Split(arrays["train_images"], arrays["train_labels"])
    test = Split(arrays["test_images"], arrays["test_labels"])
    source = f"IDX files in {os.path.abspath(folder)} (train {len(train.images)}, test {len(test.images)})"
    return Dataset(train, test, source)


def _fetch(url, target, md5, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".part")
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(response, f)
    if _md5(tmp) != md5:
        os.remove(tmp)
        raise OSError(f"md5 mismatch for {url}")
    os.replace(tmp, target)


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _help(dataset, folder):
    names = "\n".join(f"    {name}" for name in FILES.values())
    return (
        f"Put these four {dataset} files (official names, .gz or not) into {folder}:\n{names}\n"
        f"then pass --data-dir {folder} (or set {ENV_VAR}). With internet, they download "
        "automatically, or install tensorflow-datasets (pip install 'ebm_jax[tfds]')."
    )
