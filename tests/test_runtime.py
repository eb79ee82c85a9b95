"""Process-wide settings: the persistent compilation cache and the deterministic-ops flag (each
in a fresh process, as they must be set before JAX starts)."""

import os
import subprocess
import sys

import jax
import pytest

from ebm_jax import runtime

PROGRAM = """
import os, sys, jax, jax.numpy as jnp
from ebm_jax import runtime
print(runtime.compilation_cache(min_compile_seconds=0.0))
f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T)
print(float(f(jnp.ones((64, 64))).sum()))
"""


def _run(code, env):
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_the_compilation_cache_is_written_once_and_reused(tmp_path):
    cache = str(tmp_path / "cache")
    first = _run(PROGRAM, {"EBM_JAX_COMPILATION_CACHE": cache, "JAX_PLATFORMS": "cpu"})
    assert first[0] == cache
    entries = sorted(os.listdir(cache))
    assert entries                                   # the jitted program was stored
    second = _run(PROGRAM, {"EBM_JAX_COMPILATION_CACHE": cache, "JAX_PLATFORMS": "cpu"})
    assert second == first and sorted(os.listdir(cache)) == entries   # loaded, not compiled and stored again
    off = _run(PROGRAM, {"EBM_JAX_COMPILATION_CACHE": "none", "JAX_PLATFORMS": "cpu"})
    assert off[0] == "None"


def test_deterministic_ops_sets_the_flag_before_the_backends_start():
    code = ("import os, jax; from ebm_jax import runtime; runtime.deterministic_ops(); runtime.deterministic_ops(); "
            "print(os.environ['XLA_FLAGS'].split().count('--xla_gpu_deterministic_ops=true')); print(jax.devices()[0].platform)")
    count, platform = _run(code, {"XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"})
    assert count == "1" and platform == "cpu"
    jax.devices()                                    # this process's backends have started
    with pytest.raises(RuntimeError, match="before JAX starts"):
        runtime.deterministic_ops()


def test_bit_exact_on_this_cpu():
    assert jax.default_backend() != "cpu" or runtime.bit_exact()
