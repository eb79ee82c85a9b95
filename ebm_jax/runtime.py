"""Process-wide JAX settings the experiments turn on before anything compiles.

    compilation_cache(path)   JAX's persistent compilation cache in `path` (default:
                              $EBM_JAX_COMPILATION_CACHE, else ~/.cache/ebm_jax/xla): a second
                              run with the same shapes loads its compiled steps instead of
                              compiling them again. Returns the folder, or None when `path` is
                              "none" (off).
    deterministic_ops()       XLA's deterministic GPU kernels (`--xla_gpu_deterministic_ops`):
                              reductions and convolutions in a fixed order, so the same state and
                              batch give the same bits on a GPU as they do on a CPU (exact resume
                              there). Slower on a GPU; nothing changes on a CPU, which is
                              deterministic already. Must run before JAX starts its backends.
    bit_exact()               whether this process may expect the same bits from the same state and
                              inputs: on a CPU, or with `deterministic_ops` on.
"""

import os
from typing import Optional

import jax
from jax._src import xla_bridge

DEFAULT_CACHE = os.path.join("~", ".cache", "ebm_jax", "xla")
DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"


def compilation_cache(path: Optional[str] = None, min_compile_seconds: float = 0.5) -> Optional[str]:
    """Turns on the persistent compilation cache in `path` (module docstring) for programs that
    take at least `min_compile_seconds` to compile; returns the folder, None when turned off."""
    path = path or os.environ.get("EBM_JAX_COMPILATION_CACHE") or DEFAULT_CACHE
    if path.lower() == "none":
        return None
    path = os.path.abspath(os.path.expanduser(path))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def deterministic_ops() -> None:
    """Adds XLA's deterministic-ops flag to `XLA_FLAGS` (module docstring); RuntimeError when the
    backends have already started (the flag would be ignored)."""
    if xla_bridge.backends_are_initialized():
        raise RuntimeError("deterministic_ops must run before JAX starts its backends (before the first array "
                           "or jax.devices() call)")
    flags = os.environ.get("XLA_FLAGS", "")
    if DETERMINISTIC_FLAG not in flags.split():
        os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_FLAG}".strip()


def bit_exact() -> bool:
    """True on a CPU backend, or when XLA's deterministic-ops flag is set (`deterministic_ops`)."""
    return jax.default_backend() == "cpu" or DETERMINISTIC_FLAG in os.environ.get("XLA_FLAGS", "").split()
