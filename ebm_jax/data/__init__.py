"""Data: a strict IDX reader, MNIST / Fashion-MNIST sources (local, download, tfds), batching."""

from ebm_jax.data.batching import fingerprint, padded_batches, steps_per_epoch, train_batch_indices
from ebm_jax.data.idx import IdxFormatError, read_idx
from ebm_jax.data.mnist import DataNotFoundError, Dataset, Split, binarize, load, to_float_images

__all__ = [
    "DataNotFoundError",
    "Dataset",
    "IdxFormatError",
    "Split",
    "binarize",
    "fingerprint",
    "load",
    "padded_batches",
    "read_idx",
    "steps_per_epoch",
    "to_float_images",
    "train_batch_indices",
]
