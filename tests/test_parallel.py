"""`ebm_jax.parallel`: splitting the CPU into devices, the data mesh. (The sharded train step
and samplers against one device: train/test_train_step.py.)"""

import os
import subprocess
import sys

import jax
import pytest
from jax.sharding import Mesh
import numpy as np

from ebm_jax import parallel


def _run(code):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_split_cpu_sets_the_device_count_before_jax_starts():
    out = _run("import jax\nfrom ebm_jax import parallel\n"
               "n = parallel.split_cpu(3)\nprint(n, len(jax.devices()), parallel.data_mesh().shape)")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["3", "3"] and "('data', 3)" in out.stdout


def test_split_cpu_after_jax_started_says_so():
    out = _run("import jax\nfrom ebm_jax import parallel\njax.devices()\nparallel.split_cpu(2)")
    assert out.returncode != 0
    assert "split_cpu must run before JAX starts" in out.stderr


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_devices"):
        parallel.split_cpu(0)
    with pytest.raises(ValueError, match="at least one device"):
        parallel.data_mesh([])
    other = Mesh(np.array(jax.devices()[:1]), ("batch",))
    with pytest.raises(ValueError, match="axis named 'data'"):
        parallel.check_data_mesh(other)
    from ebm_jax import presets, samplers

    with pytest.raises(ValueError, match="axis named 'data'"):
        samplers.sample(jax.random.key(0), presets.tutorial_sampler(1), lambda x: 0.0 * x.sum(), np.zeros((2, 3)),
                        mesh=other)


def test_data_mesh_over_given_devices():
    mesh = parallel.data_mesh(jax.devices()[:1])
    assert mesh.axis_names == (parallel.DATA_AXIS,) and mesh.size == 1
