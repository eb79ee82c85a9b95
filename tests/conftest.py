import os

import pytest

from ebm_jax import runtime

# The experiments turn on JAX's persistent compilation cache; tests keep it off (a test of the
# cache turns it on in a subprocess with its own folder).
os.environ["EBM_JAX_COMPILATION_CACHE"] = "none"

# Tests that assert the same bits (exact resume, the same state stepped twice) hold on a CPU, and
# on a GPU only with XLA's deterministic kernels: the suite turns them on (before JAX starts; no
# effect on a CPU). `runtime.bit_exact()` says whether this process may expect the same bits.
runtime.deterministic_ops()

FIXTURE_DIR = os.path.join(os.path.dirname(__file__), "fixtures", "mnist_tiny")


@pytest.fixture
def mnist_tiny_dir():
    return FIXTURE_DIR
