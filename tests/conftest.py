import os
import socket
import subprocess

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture
def run_processes():
    """`run(command, num_processes, timeout) -> (return codes, stdouts, stderrs)`: starts
    `command + ["--process-id", i]` for each process of a multi-process run (CPU only, a free
    coordinator port in place of "PORT" in `command`) and waits for all of them."""

    def run(command, num_processes, timeout=300):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env.pop("XLA_FLAGS", None)
        port = str(free_port())
        command = [part.replace("PORT", port) for part in command]
        processes = [subprocess.Popen(command + ["--process-id", str(i)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for i in range(num_processes)]
        outputs = []
        try:
            for process in processes:
                outputs.append(process.communicate(timeout=timeout))
        finally:
            for process in processes:
                process.kill()
        return [p.returncode for p in processes], [o[0] for o in outputs], [o[1] for o in outputs]

    return run
