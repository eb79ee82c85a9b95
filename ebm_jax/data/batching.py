"""Host-side batching: seeded shuffles that depend only on (seed, epoch), so a resumed run
sees exactly the batches an uninterrupted one would have seen; `fingerprint` names the data a
run trained on, so a resume on other data is refused."""

import hashlib
from typing import Iterator, Tuple

import numpy as np


def steps_per_epoch(num_examples: int, batch_size: int, drop_last: bool = True) -> int:
    check_batch_size(num_examples, batch_size)
    return num_examples // batch_size if drop_last else -(-num_examples // batch_size)


def check_batch_size(num_examples: int, batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size > num_examples:
        raise ValueError(f"batch_size={batch_size} is larger than the data ({num_examples} examples)")


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffle of epoch `epoch`: a permutation of `range(num_examples)`."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def train_batch_indices(num_examples: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """`[steps_per_epoch, batch_size]` indices; the last partial batch is dropped (fixed shape,
    so the jitted step compiles once; it is a different subset each epoch)."""
    n = steps_per_epoch(num_examples, batch_size, drop_last=True)
    return epoch_permutation(num_examples, seed, epoch)[: n * batch_size].reshape(n, batch_size)


def padded_batches(array: np.ndarray, batch_size: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """All of `array` in order, as `(batch [batch_size, ...], valid [batch_size] bool)`; the last
    batch is padded by repeating its first row and `valid` masks the padding out."""
    for start in range(0, len(array), batch_size):
        batch = array[start: start + batch_size]
        valid = np.ones(batch_size, bool)
        if len(batch) < batch_size:
            valid[len(batch):] = False
            pad = np.repeat(batch[:1], batch_size - len(batch), axis=0)
            batch = np.concatenate([batch, pad])
        yield batch, valid


def fingerprint(*arrays: np.ndarray) -> str:
    """`"<shape>x... sha256:<16 hex>"`: the shapes and a hash of the bytes of `arrays` (the
    training images and labels), the same wherever the files are."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.asarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    shapes = " ".join("x".join(map(str, np.shape(a))) for a in arrays)
    return f"{shapes} sha256:{digest.hexdigest()[:16]}"
