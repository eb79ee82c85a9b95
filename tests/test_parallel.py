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


def test_one_process_helpers_on_three_devices():
    """With one process: its rows are the whole batch, `global_batch` places it split over the
    mesh, `host_local` leaves local arrays alone, `agree` and `broadcast_from_primary` are
    identities (float64 bits kept)."""
    out = _run("import jax\nfrom ebm_jax import parallel\nparallel.split_cpu(3)\n"
               "import numpy as np\nmesh = parallel.data_mesh()\n"
               "rows = parallel.process_rows(mesh, 6)\nb = parallel.global_batch({'x': np.arange(6.0)}, mesh)\n"
               "print(rows, tuple(b['x'].sharding.spec), len(b['x'].addressable_shards), np.asarray(b['x']).sum())\n"
               "print(parallel.host_local(b) is not None and parallel.host_local(b)['x'] is b['x'])\n"
               "print(parallel.agree([0, 3]).tolist(), parallel.broadcast_from_primary([0.1])[0] == 0.1)\n"
               "try:\n    parallel.process_rows(mesh, 4)\nexcept ValueError as e:\n    print('error', e)\n")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "slice(0, 6, None) ('data',) 3 15.0"
    assert lines[1] == "True" and lines[2] == "[0, 3] True"
    assert "batch size 4 does not split over the 3 devices" in lines[3]


def test_initialize_checks_its_arguments():
    with pytest.raises(ValueError, match="or none of them"):
        parallel.initialize("localhost:1234", 2)
    with pytest.raises(ValueError, match=r"process_id must be in \[0, 2\)"):
        parallel.initialize("localhost:1234", 2, 2)
