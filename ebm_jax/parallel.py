"""Every core at work: a Mesh with a data axis, and sampler chains split over it.

Why: on a CPU, XLA runs one device's program op after op on one thread; only large matrix
products spread over the other cores. A sampler step of a small CNN is mostly small ops, so one
CPU device leaves the other cores mostly idle, while several XLA devices on the same CPU run their
programs side by side, one per core (measured in `experiments/benchmarks/README.md`).

What:
  split_cpu(n)          before JAX starts, exposes the host CPU as `n` XLA devices (default: the
                        cores this process may run on); GPUs are left as they are
  data_mesh(devices)    a 1-D `Mesh` over `devices` (default: all) with the axis `DATA_AXIS`
  check_data_mesh(mesh) raises unless `mesh` has that axis (the sharded steps call it)
`train.make_train_step(..., mesh=mesh)` splits its batch over the mesh with GSPMD (`jax.jit`
shardings) and its sampler chains with `samplers.sample(..., mesh=mesh)` (`shard_map`, the same
draws as one device); the gradient's mean over the batch is XLA's all-reduce.
"""

import os
from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh

DATA_AXIS = "data"


def split_cpu(num_devices: Optional[int] = None) -> int:
    """Exposes the host CPU as `num_devices` XLA devices (default: the number of cores this
    process may use). Call it right after `import jax`, before any JAX computation: the device
    count is fixed when JAX's backends start. It sets the CPU backend's device count only: where
    JAX's default backend is a GPU, `jax.devices()` still lists the GPUs. Returns `num_devices`."""
    if num_devices is None:
        num_devices = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if int(num_devices) < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}")
    try:
        jax.config.update("jax_num_cpu_devices", int(num_devices))
    except RuntimeError as error:
        raise RuntimeError(
            "split_cpu must run before JAX starts its backends (before the first array or "
            "jax.devices() call); call it right after `import jax`"
        ) from error
    return int(num_devices)


def data_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A 1-D mesh over `devices` (default: `jax.devices()`) with the axis `DATA_AXIS`."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh needs at least one device")
    return Mesh(np.array(devices), (DATA_AXIS,))


def check_data_mesh(mesh: Mesh) -> None:
    """Raises `ValueError` unless `mesh` has an axis named `DATA_AXIS`."""
    if DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"the mesh needs an axis named {DATA_AXIS!r}, got {mesh.axis_names}")
