"""A strict reader for IDX files (the MNIST format), plain or gzip-compressed.

Layout: 2 zero bytes, a type byte (0x08 = uint8), a byte giving the number of dimensions n,
n big-endian uint32 sizes, then prod(sizes) raw values. Images are `0x00000803` (n = 3),
labels `0x00000801` (n = 1). Every check failure raises `IdxFormatError` naming the file.
"""

import gzip
import os
import zlib

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxFormatError(ValueError):
    """A file that is not a well-formed IDX file (bad magic, truncated, trailing bytes...)."""


def read_idx(path, expected_ndim=None) -> np.ndarray:
    """Reads an IDX file (`.gz` is decompressed) into a numpy array of its stated shape."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise IdxFormatError(f"{path}: cannot decompress ({e}); the file is corrupted or truncated") from e
    return parse_idx(raw, path, expected_ndim)


def parse_idx(raw: bytes, name: str = "<bytes>", expected_ndim=None) -> np.ndarray:
    """Parses IDX bytes; `name` only appears in error messages."""
    if len(raw) < 4:
        raise IdxFormatError(f"{name}: {len(raw)} bytes, too short for an IDX header")
    zero, type_code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or type_code not in _TYPES or ndim == 0:
        raise IdxFormatError(
            f"{name}: bad magic number 0x{raw[:4].hex()} (expected 0x00000803 for images or "
            "0x00000801 for labels); not an IDX file"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise IdxFormatError(f"{name}: {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(f"{name}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[type_code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{name}: {what}: {len(raw)} bytes, but the header's shape {shape} needs {expected}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> None:
    """Writes a uint8 array as IDX (gzip when `path` ends in `.gz`); used for test fixtures."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
